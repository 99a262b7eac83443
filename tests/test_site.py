"""`lite-env build` and the addon: sites that start, rebuild fast, compare equal, survive a kill."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from conftest import kernel_settings, run_in_site

from lite_env.pack import LAZY_STDLIB
from lite_env.pyodide_node import run_python_with_loader
from lite_env.site import LOADER_NAME, write_loader

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(tmp_path_factory, default_environment, cache_dir):
    """The default environment built into three folders: "again" with the same cache (reused)
    and --no-precompress, "second" from the first's lock with an empty cache, so install,
    bytecode, image and site are all made anew. Returns the first and second sites and the
    first two summaries."""
    folder = tmp_path_factory.mktemp("sites")
    summaries = []
    builds = (
        ("first", cache_dir, []),
        ("again", cache_dir, ["--no-precompress"]),
        ("second", folder / "empty-cache", []),
    )
    for name, cache, flags in builds:
        env = {**os.environ, "LITE_ENV_CACHE_DIR": str(cache)}
        done = subprocess.run(
            [sys.executable, "-m", "lite_env", "build", "--json", *flags, default_environment]
            + ["-o", folder / name],
            capture_output=True,
            text=True,
            env=env,
        )
        assert done.returncode == 0, done.stderr
        summaries.append(json.loads(done.stdout))
    return folder / "first", folder / "second", summaries[:2]


def test_the_site_points_the_kernel_at_the_loader_and_the_image(built):
    site, _, _ = built
    settings = kernel_settings(site)
    assert settings["pyodideUrl"] == "./static/pyodide/lite-env.mjs"
    assert settings["disablePyPIFallback"] is True
    options = settings["loadPyodideOptions"]
    assert set(options["packages"]) <= set(options["liteEnvProvides"])
    assert (site / options["liteEnvManifestURL"]).is_file()
    for name in ("pyodide.mjs", "pyodide.asm.wasm", "python_stdlib.zip", "pyodide-lock.json"):
        assert (site / "static" / "pyodide" / name).is_file()


def test_the_site_runtime_starts_with_the_environment(built):
    site, _, _ = built
    done = run_in_site(
        site,
        "import IPython, sympy, tabulate, pandas\nprint(sympy.Integer(2) ** 100)\n"
        "print(pandas.Timestamp('2026-01-15 12:00', tz='Europe/Paris').isoformat())\n",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "1267650600228229401496703205376\n2026-01-15T12:00:00+01:00\n"


def test_the_loader_imports_the_kernels_pure_modules_before_the_kernel_runs(built):
    site, _, _ = built
    names = "{'IPython', 'jedi', 'comm', 'piplite.piplite', 'pyodide_kernel'}"
    probe = f"import sys\nprint(sorted({names} & set(sys.modules)))"
    assert run_in_site(site, probe).stdout == "['IPython', 'comm', 'jedi', 'piplite.piplite']\n"
    assert run_in_site(site, probe, liteEnvImports=[]).stdout == "[]\n"


def test_the_standard_library_the_start_does_not_import_is_a_lazy_chunk(built):
    """python_stdlib.zip keeps what the start imports (bytecode beside it); the rest is a
    chunk of the image, written under lib-dynload on the first import of one of its
    modules (under node, where every chunk is written at start, before Python starts)."""
    site, _, _ = built
    options = kernel_settings(site)["loadPyodideOptions"]
    with zipfile.ZipFile(site / "static" / "pyodide" / "python_stdlib.zip") as stdlib:
        names = set(stdlib.namelist())
    assert {"json/__init__.py", "bdb.py", "bdb.pyc"} - names == set()
    assert not {"fractions.py", "statistics.py", "xml/__init__.py"} & names
    manifest = json.loads((site / options["liteEnvManifestURL"]).read_text())
    (chunk,) = [c for c in manifest["chunks"] if c["package"] == LAZY_STDLIB]
    assert {"fractions", "statistics", "xml"} <= set(chunk["lazy"])
    assert "lib/python3.14/lib-dynload/fractions.py" in [path for path, *_ in chunk["files"]]
    code = "import statistics, fractions\nprint(statistics.mean([fractions.Fraction(1, 3), 1]))"
    done = run_in_site(site, code)
    assert (done.returncode, done.stdout) == (0, "2/3\n"), done.stderr


def test_two_builds_of_one_lock_compare_equal_file_by_file(built):
    first, second, _ = built

    def digests(site: Path) -> dict[str, str]:
        return {
            path.relative_to(site).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(site.rglob("*"))
            if path.is_file()
        }

    one, other = digests(first), digests(second)
    assert len(one) > 100
    # the precompressed copies too
    assert {"static/pyodide/pyodide.asm.wasm.gz", "static/pyodide/pyodide.asm.mjs.gz"} <= set(one)
    assert sorted(set(one) ^ set(other)) == []
    assert [name for name in one if one[name] != other[name]] == []


def test_no_precompress_leaves_the_gzip_copies_out(built):
    first, _, _ = built
    again = first.with_name("again")
    # a copy is `name.gz` beside `name` (the image's chunks are gzip files of their own)
    copies = {p.relative_to(first) for p in first.rglob("*.gz") if p.with_suffix("").exists()}
    assert len(copies) > 100
    assert not [p for p in again.rglob("*.gz") if p.with_suffix("").exists()]
    assert sorted(p.relative_to(again) for p in again.rglob("*")) == sorted(
        p.relative_to(first) for p in first.rglob("*") if p.relative_to(first) not in copies
    )


def test_the_build_summary_names_the_packages_fetched_on_first_import(built):
    _, _, (first, _) = built
    lazy = first["image"]["lazy_packages"]
    assert {"sympy", "networkx", "tabulate"} <= set(lazy)
    # compiled packages too (extension modules are written on first import), with the C
    # libraries in lib/ that only they link (written with them); not what the start imports
    assert {"pyyaml", "numpy", "pandas", "matplotlib", "libyaml", "freetype"} <= set(lazy)
    assert not {"ipython", "pyodide-kernel"} & set(lazy)
    assert 0 < first["image"]["lazy_bytes"] < first["image"]["bytes"]


def test_an_unchanged_lock_rebuilds_from_the_cache(built):
    _, _, (first, second) = built
    assert second["reused_image"] is True
    assert second["image"] == first["image"]


def test_a_killed_build_leaves_the_previous_site_intact(built, default_environment, cache_dir):
    site, _, _ = built
    before = sorted(p.relative_to(site) for p in site.rglob("*"))
    env = {**os.environ, "LITE_ENV_CACHE_DIR": str(cache_dir)}
    build = subprocess.Popen(
        [sys.executable, "-m", "lite_env", "build", default_environment, "-o", site],
        stderr=subprocess.DEVNULL,
        env=env,
    )
    deadline = time.monotonic() + 120
    while not list(site.parent.glob(f".{site.name}.*")) and time.monotonic() < deadline:
        time.sleep(0.02)  # wait until the new site is being written beside the old one
    build.send_signal(signal.SIGKILL)
    build.wait()
    assert sorted(p.relative_to(site) for p in site.rglob("*")) == before
    # the next build succeeds and cleans nothing it should not
    for leftover in site.parent.glob(f".{site.name}.*"):
        shutil.rmtree(leftover)
    done = subprocess.run(
        [sys.executable, "-m", "lite_env", "build", default_environment, "-o", site],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr


WIDGETS = "@jupyter-widgets/jupyterlab-manager"


def test_jupyter_lite_build_with_the_addon_makes_a_working_site(
    tmp_path, default_environment, cache_dir
):
    lite_dir = tmp_path / "lite"
    lite_dir.mkdir()
    shutil.copyfile(default_environment, lite_dir / "environment.yml")
    (lite_dir / "channel").symlink_to(default_environment.parent / "channel")
    env = {**os.environ, "LITE_ENV_CACHE_DIR": str(cache_dir)}
    done = subprocess.run(
        [sys.executable, "-m", "jupyterlite_core", "build", "--output-dir", "_output"],
        cwd=lite_dir,
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "post_build:lite-env:environment" in done.stdout + done.stderr
    site = lite_dir / "_output"
    assert kernel_settings(site)["pyodideUrl"] == "./static/pyodide/lite-env.mjs"
    # the environment's widget extension (not on the build machine) is registered in the site
    config = json.loads((site / "jupyter-lite.json").read_text())["jupyter-config-data"]
    assert WIDGETS in {e["name"] for e in config["federated_extensions"]}
    assert (site / "extensions" / WIDGETS / "package.json").is_file()
    code = "import jedi, networkx as nx\nprint(nx.shortest_path_length(nx.path_graph(5), 0, 4))"
    done = run_in_site(site, code)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "4\n"


def test_lock_mode_needs_no_loader(tmp_path, default_environment, cache_dir):
    """--mode lock: Pyodide's own loader installs the environment from pyodide-lock.json."""
    env = {**os.environ, "LITE_ENV_CACHE_DIR": str(cache_dir)}
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "lite_env", "build", "--mode", "lock", default_environment]
        + ["-o", site],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    settings = kernel_settings(site)
    assert settings["pyodideUrl"] == "./static/pyodide/pyodide.mjs"
    options = settings["loadPyodideOptions"]
    assert {"ipython", "jedi", "sympy", "pyodide-kernel"} <= set(options["packages"])
    # the loader passes options through untouched when there is no image: use it to boot
    write_loader(site / "static" / "pyodide")
    options["lockFileURL"] = str(site / options["lockFileURL"])  # node reads files
    done = run_python_with_loader(
        site / "static" / "pyodide",
        "import IPython, sympy, yaml, matplotlib.ft2font as ft\n"
        "print(sympy.Integer(3) ** 4, yaml.__with_libyaml__, ft.__freetype_version__)",
        options,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    # libyaml-libs loaded too; and libpng-libs, which freetype-libs links
    assert done.stdout.strip().splitlines()[-1] == "81 True 2.14.3"
    # `lite-env check` imports the lock's modules in the kernel in Chromium
    os.remove(site / "static" / "pyodide" / LOADER_NAME)
    done = subprocess.run(
        [sys.executable, "-m", "lite_env", "check", "--json", site],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    checked = json.loads(done.stdout)
    assert checked["ok"] and not checked["foreign_requests"]
    assert {"IPython", "sympy", "yaml"} <= checked["modules"].keys()
    assert set(checked["modules"].values()) == {"ok"}


def test_builds_killed_at_any_stage_leave_the_site_and_the_cache_usable(
    built, default_environment, tmp_path
):
    """SIGKILL a cold build at several moments (locking, fetching, installing, compiling,
    packing, building the site); each time the previous site stays whole, and a build with
    the same cache afterwards succeeds and starts."""
    previous, _, _ = built
    site = tmp_path / "site"
    shutil.copytree(previous, site)
    before = {p.relative_to(site): p.stat().st_size for p in site.rglob("*") if p.is_file()}
    env = {**os.environ, "LITE_ENV_CACHE_DIR": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "lite_env", "build", default_environment, "-o", site]
    for delay in (0.5, 1.5, 3, 5, 8, 12):
        build = subprocess.Popen(command, stderr=subprocess.DEVNULL, env=env)
        try:
            build.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            build.send_signal(signal.SIGKILL)
            build.wait()
        after = {p.relative_to(site): p.stat().st_size for p in site.rglob("*") if p.is_file()}
        assert after == before or build.returncode == 0
        if build.returncode == 0:
            break
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    started = run_in_site(site, "import IPython, tabulate\nprint(tabulate.tabulate([[1, 2]]))")
    assert started.returncode == 0, started.stderr
    assert started.stdout.split()[-1] == "-"
