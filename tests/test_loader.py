"""The loader boots Pyodide (under node) with an image: files, symlinks, libraries, failures."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import conda_package, index_channel, runtime_folder, served

from lite_env.bytecode import compile_bytecode
from lite_env.channel.recipes import build_recipe
from lite_env.install import install_prefix
from lite_env.pack import Image, pack
from lite_env.pyodide_node import run_python_with_loader
from lite_env.solve import solve
from lite_env.spec import read_spec

pytestmark = pytest.mark.slow
RECIPE = Path(__file__).parents[1] / "recipes" / "pyodide-python"
#: A WebAssembly side module exporting add(i32, i32) -> i32, as emcc -sSIDE_MODULE makes them.
LIBADD = bytes.fromhex(
    "0061736d01000000"  # magic, version
    "000f08" + b"dylink.0".hex() + "010400000000"  # dylink.0: memory and table sizes 0
    "01070160027f7f017f"  # type: (i32, i32) -> i32
    "03020100"  # one function of that type
    "070701036164640000"  # export it as "add"
    "0a09010700200020016a0b"  # local.get 0, local.get 1, i32.add
)
KITCHEN = b"""\
import ctypes

_lib = ctypes.CDLL("libkitchen.so")  # found through /usr/lib, where the loader links it
_lib.add.restype = ctypes.c_int


def add(a, b):
    return _lib.add(a, b)
"""


def run(runtime: Path, base_url: str, image: Image, code: str):
    options = {"liteEnvManifestURL": f"{base_url}{image.manifest}", "liteEnvProvides": []}
    return run_python_with_loader(runtime, code, options, timeout=300)


@pytest.fixture(scope="module")
def kitchen(tmp_path_factory, cache_dir):
    """An image holding a package with a shared library, a symlink to it and a module using it."""
    folder = tmp_path_factory.mktemp("kitchen")
    channel = folder / "channel"
    build_recipe(RECIPE, channel, cache_dir=cache_dir)
    conda_package(
        channel,
        "kitchen",
        "1.0",
        files={"site-packages/kitchen/__init__.py": KITCHEN, "lib/libkitchen.so.1": LIBADD},
    )
    from lite_env.conda_file import PackageFile, write_conda

    write_conda(
        channel / "noarch",
        {"name": "kitchen-link", "version": "1.0", "build": "0", "build_number": 0,
         "subdir": "noarch", "depends": []},
        [PackageFile("lib/libkitchen.so", link_target="libkitchen.so.1")],
    )  # fmt: skip
    index_channel(channel)
    (folder / "environment.yml").write_text(
        "channels: [./channel]\ndependencies: [python, kitchen, kitchen-link]\n"
    )
    records = solve(read_spec(folder / "environment.yml"), cache_dir=cache_dir)
    prefix = install_prefix(records, folder / "prefix", cache_dir=cache_dir)
    image = pack(prefix, folder / "image")
    return runtime_folder(prefix, folder / "runtime"), image


def test_library_and_symlink_are_restored_and_load(kitchen):
    runtime, image = kitchen
    with served(image.folder) as base_url:
        done = run(
            runtime,
            base_url,
            image,
            "import os, kitchen\nprint(kitchen.add(2, 3), os.readlink('/lib/libkitchen.so'))",
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "5 libkitchen.so.1\n"


def test_a_corrupt_chunk_stops_the_start_and_names_it(kitchen, tmp_path):
    runtime, image = kitchen
    copy = tmp_path / "image"
    copy.mkdir()
    for path in image.folder.iterdir():
        data = bytearray(path.read_bytes())
        if path.name.startswith("kitchen-1.0-"):
            data[len(data) // 2] ^= 0xFF
        (copy / path.name).write_bytes(bytes(data))
    with served(copy) as base_url:
        done = run(runtime, base_url, image, "print('started')")
    assert done.returncode == 2 and "started" not in done.stdout
    assert "chunk kitchen-1.0-" in done.stderr and "of package kitchen is corrupt" in done.stderr


def test_a_missing_chunk_stops_the_start_and_names_it(kitchen, tmp_path):
    runtime, image = kitchen
    copy = tmp_path / "image"
    copy.mkdir()
    for path in image.folder.iterdir():
        if not path.name.startswith("kitchen-link-"):
            (copy / path.name).write_bytes(path.read_bytes())
    with served(copy) as base_url:
        done = run(runtime, base_url, image, "print('started')")
    assert done.returncode == 2
    assert "of package kitchen-link" in done.stderr and "HTTP 404" in done.stderr


@pytest.fixture(scope="module")
def default_image(tmp_path_factory, default_environment, cache_dir):
    """The repository's default environment, installed, compiled and packed."""
    folder = tmp_path_factory.mktemp("default-image")
    records = solve(read_spec(default_environment), cache_dir=cache_dir)
    prefix = install_prefix(records, folder / "prefix", cache_dir=cache_dir)
    compiled = compile_bytecode(prefix, folder / "bytecode")
    assert compiled.compiled > 100 and compiled.problems == ()
    image = pack(prefix, folder / "image", overlay=folder / "bytecode")
    return runtime_folder(prefix, folder / "runtime"), image


def test_every_module_of_the_default_environment_imports(default_image):
    from lite_env.site_check import top_level_modules

    runtime, image = default_image
    modules = top_level_modules(image.folder, image.manifest)
    assert {"IPython", "jedi", "comm", "sympy", "tabulate", "networkx", "rich"} <= set(modules)
    # an import may only fail for want of an optional project the environment does not have
    # (matplotlib_inline needs matplotlib); anything else would be an image that lost files
    code = (
        "import importlib, sys\n"
        f"modules = {modules!r}\n"
        "failed = []\n"
        "for name in modules:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ModuleNotFoundError as error:\n"
        "        if (error.name or '').split('.')[0] in modules:\n"
        "            failed.append(f'{name}: {error!r}')\n"
        "    except Exception as error:\n"
        "        failed.append(f'{name}: {error!r}')\n"
        "sys.__stdout__.write(repr(failed) + '\\n')\n"
    )
    with served(image.folder) as base_url:
        done = run(runtime, base_url, image, code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_ipython_runs_a_cell_from_the_image(default_image):
    runtime, image = default_image
    code = (
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "import sys\n"
        "cell = 'from sympy.abc import x\\nimport sympy\\nsympy.factor(x**2 - 1)'\n"
        "result = InteractiveShell.instance().run_cell(cell)\n"
        "sys.__stdout__.write(f'{result.success} {result.result}\\n')\n"
    )
    with served(image.folder) as base_url:
        done = run(runtime, base_url, image, code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "True (x - 1)*(x + 1)"
