"""Memory snapshots: restored instead of a cold boot, reseeded, and refused when they don't fit."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import pytest
from conftest import kernel_settings, run_in_site

from lite_env.kernel import KERNEL_PLUGIN, UNSNAPSHOTTABLE
from lite_env.pipeline import Build, build
from lite_env.snapshot import make_snapshot
from lite_env.spec import read_spec

pytestmark = pytest.mark.slow
#: Where Pyodide's snapshot header keeps the id of the runtime build it was made with.
BUILD_ID = slice(16, 48)
PROBE = "import sys, random\nprint('IPython' in sys.modules, random.random())"
#: Without the loader's own imports, IPython is in sys.modules before any code only when the
#: snapshot was restored.
NO_IMPORTS = {"liteEnvImports": []}


@pytest.fixture(scope="module")
def built(tmp_path_factory, default_environment, cache_dir) -> Build:
    output = tmp_path_factory.mktemp("snapshot") / "site"
    spec = read_spec(default_environment)
    return build(spec, output, spec.options.override(snapshot=True), cache_dir=cache_dir)


@pytest.fixture(scope="module")
def site(built) -> Path:
    return built.site.folder


def test_the_snapshot_holds_the_modules_it_lists_and_nothing_unsafe(built, site):
    snapshot = built.prepared.snapshot
    assert snapshot is not None
    # a module that failed to import is reported, not listed (the start's trace names a few
    # that only the kernel's own imports bring in)
    assert not {failure.split(":")[0] for failure in snapshot.failed} & set(snapshot.modules)
    assert {"IPython", "IPython.core.interactiveshell", "jedi", "comm"} <= set(snapshot.modules)
    assert not [m for m in snapshot.modules if m.split(".")[0] in UNSNAPSHOTTABLE]
    # restored without any import of the loader's: every listed module is already there
    probe = f"import sys\nprint(sorted(set({list(snapshot.modules)!r}) - set(sys.modules)))"
    done = run_in_site(site, probe, **NO_IMPORTS)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_a_module_that_fails_to_import_is_reported_not_listed(built, tmp_path):
    prefix = built.prepared.runtime_dir.parent.parent  # the installed prefix in the cache
    made = make_snapshot(prefix, tmp_path, modules=["textwrap", "no_such_module"])
    assert made.modules == ("textwrap",)
    assert [f.split(":")[0] for f in made.failed] == ["no_such_module"]
    assert "ModuleNotFoundError" in made.failed[0]
    assert (tmp_path / made.file).stat().st_size == made.size


def test_the_site_restores_the_snapshot_and_reseeds_random(site):
    first, second = run_in_site(site, PROBE, **NO_IMPORTS), run_in_site(site, PROBE, **NO_IMPORTS)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    restored = [run.stdout.split() for run in (first, second)]
    assert [flag for flag, _ in restored] == ["True", "True"]  # imported before any code ran
    assert restored[0][1] != restored[1][1]
    assert "starting cold" not in first.stderr


def test_a_snapshot_of_another_runtime_build_is_refused_and_the_start_goes_cold(site, tmp_path):
    other = tmp_path / "site"
    shutil.copytree(site, other)
    options = kernel_settings(other)["loadPyodideOptions"]
    path = other / options["liteEnvSnapshotURL"]
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[BUILD_ID] = bytes(b ^ 0xFF for b in raw[BUILD_ID])
    data = gzip.compress(bytes(raw), mtime=0)
    path.write_bytes(data)
    config_path = other / "jupyter-lite.json"
    config = json.loads(config_path.read_text())
    config["jupyter-config-data"]["litePluginSettings"][KERNEL_PLUGIN]["loadPyodideOptions"][
        "liteEnvSnapshotSha256"
    ] = hashlib.sha256(data).hexdigest()
    config_path.write_text(json.dumps(config))

    done = run_in_site(other, PROBE + "\nimport IPython\nprint(IPython.__version__)", **NO_IMPORTS)
    assert done.returncode == 0, done.stderr
    assert "cannot restore" in done.stderr and "starting cold" in done.stderr
    assert done.stdout.split()[0] == "False"  # a cold start: nothing imported beforehand
    assert done.stdout.split()[-1].startswith("9.")


@pytest.mark.browser
def test_a_snapshot_site_runs_cells_differs_per_load_and_restarts(site):
    from lite_env.site_check import open_notebook, run_cell

    numbers = []
    for _ in range(2):
        with open_notebook(site) as notebook:
            assert not [line for line in notebook.console if "starting cold" in line]
            numbers.append(run_cell(notebook.page, "import random\nprint(random.random())"))
            page = notebook.page
    assert numbers[0] != numbers[1]
    # the second page is closed now; a restart is checked in a third one
    with open_notebook(site) as notebook:
        page = notebook.page
        cell = "import IPython, sympy\nx = sympy.Integer(7) ** 3\nprint(x)"
        assert run_cell(page, cell).strip() == "343"
        page.keyboard.press("Escape")  # command mode: 0, 0 restarts the kernel
        page.keyboard.press("0")
        page.keyboard.press("0")
        page.get_by_role("button", name="Confirm Kernel Restart").click()
        page.wait_for_function(
            "() => [...document.querySelectorAll('.jp-StatusBar-TextItem')]"
            ".some((item) => /\\|\\s*Idle$/.test(item.textContent.trim()))",
            timeout=180_000,
        )
        output = run_cell(page, "print('x' in globals(), __import__('sympy').Integer(2) ** 5)")
        assert output.strip() == "False 32"
