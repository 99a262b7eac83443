"""Python runs in an installed prefix's Pyodide under node, its packages importable."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import rattler
from conftest import conda_package

from lite_env.channel.recipes import build_recipe
from lite_env.errors import LiteEnvError
from lite_env.install import install_prefix
from lite_env.pyodide_node import run_python
from lite_env.solve import solve
from lite_env.spec import read_spec

RECIPE = Path(__file__).parents[1] / "recipes" / "pyodide-python"
GREET = b'def hello():\n    return "Hello from greet"\n'


@pytest.fixture(scope="module")
def prefix(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Path:
    """The runtime built from its recipe plus a noarch package `greet`, installed."""
    folder = tmp_path_factory.mktemp("pyodide-node")
    channel = folder / "channel"
    build_recipe(RECIPE, channel, cache_dir=cache_dir)
    conda_package(channel, "greet", "1.0", files={"site-packages/greet/__init__.py": GREET})
    asyncio.run(rattler.index.index_fs(channel, write_zst=True, write_shards=True, force=True))
    (folder / "environment.yml").write_text(
        "channels: [./channel]\ndependencies: [python, greet]\n"
    )
    records = solve(read_spec(folder / "environment.yml"), cache_dir=folder / "cache")
    return install_prefix(records, folder / "prefix", cache_dir=folder / "cache")


@pytest.mark.slow
def test_installed_packages_import_in_pyodide(prefix):
    started = time.perf_counter()
    result = run_python(
        prefix, "import greet, sys; print(greet.hello(), sys.version, sys.platform)"
    )
    print(f"node + Pyodide boot + run: {time.perf_counter() - started:.2f} s")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Hello from greet 3.14.2 ")
    assert result.stdout.rstrip().endswith(" emscripten")


@pytest.mark.slow
def test_site_packages_is_where_pyodide_expects_it(prefix):
    result = run_python(prefix, "import greet; print(greet.__file__)")
    assert result.stdout == "/lib/python3.14/site-packages/greet/__init__.py\n", result.stderr


@pytest.mark.slow
def test_an_exception_exits_non_zero_with_its_traceback(prefix):
    result = run_python(
        prefix, "print('before')\ndef fail():\n    raise ValueError('no greeting')\nfail()\n"
    )
    assert result.returncode == 1
    assert result.stdout == "before\n"
    assert result.stderr.startswith("Traceback (most recent call last):\n")
    assert 'File "<stdin>", line 4, in <module>' in result.stderr
    assert "raise ValueError('no greeting')" in result.stderr
    assert result.stderr.rstrip().endswith("ValueError: no greeting")


@pytest.mark.slow
def test_system_exit_sets_the_exit_status(prefix):
    assert run_python(prefix, "import sys; sys.exit(3)").returncode == 3
    assert run_python(prefix, "raise SystemExit").returncode == 0


def test_a_prefix_without_the_runtime_is_a_clear_error(tmp_path):
    with pytest.raises(LiteEnvError, match="no Pyodide runtime|node is not installed"):
        run_python(tmp_path, "print('never')")
