"""A site of several environments: a kernel each (lite-env's kernels extension), one image
folder in which the chunks they share are stored once, and `lite-env check` starting them all."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lite_env.errors import LiteEnvError
from lite_env.kernel import KERNEL_BOOTSTRAP, KERNEL_PLUGIN, KERNELS_EXTENSION, KERNELS_PLUGIN
from lite_env.pack import read_image
from lite_env.pipeline import Build, build_environments
from lite_env.site import site_kernels
from lite_env.site_check import kernel_titles, open_notebook, run_cell, site_image
from lite_env.spec import read_spec

pytestmark = [pytest.mark.slow]

KERNEL = ("python 3.14.*", *KERNEL_BOOTSTRAP, "packaging")
#: Two course environments that share the kernel's packages and differ in the rest: the
#: second has a compiled package with a shared library (pyyaml, libyaml) and a JupyterLab
#: extension (ipywidgets') that the first lacks.
ENVIRONMENTS = {
    "course": ("tabulate", "sympy"),
    "Graphs and YAML": ("networkx", "pyyaml", "ipywidgets"),
}
#: What each kernel imports, and a module of the other environment it must not find.
OWN = {
    "python": (("tabulate", "sympy"), "networkx"),
    "graphs-and-yaml": (("networkx", "yaml"), "sympy"),
}


def write_environment(folder: Path, name: str, packages: tuple[str, ...], channel: Path) -> Path:
    """An environment file that carries its channel; the site keeps two of JupyterLite's apps
    (the first environment's `apps` are the site's)."""
    path = folder / f"{name.split()[0].lower()}.yml"
    path.write_text(
        f"name: {name}\nchannels:\n  - {json.dumps(str(channel))}\n"
        "lite-env:\n  channel-in-site: true\n  apps: [lab, notebooks]\n"
        "dependencies:\n" + "".join(f"  - {d}\n" for d in (*KERNEL, *packages))
    )
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path, default_channel) -> Build:
    folder = tmp_path_factory.mktemp("kernels")
    specs = [
        read_spec(write_environment(folder, name, packages, default_channel))
        for name, packages in ENVIRONMENTS.items()
    ]
    return build_environments(
        [(spec, spec.options) for spec in specs], folder / "site", cache_dir=cache_dir
    )


def test_each_environment_is_a_kernel_of_lite_envs_extension(built: Build):
    site = built.site.folder
    config = json.loads((site / "jupyter-lite.json").read_text())["jupyter-config-data"]
    assert KERNEL_PLUGIN in config["disabledExtensions"]
    assert KERNELS_EXTENSION in [e["name"] for e in config["federated_extensions"]]
    assert "@jupyter-widgets/jupyterlab-manager" in [
        e["name"] for e in config["federated_extensions"]
    ]
    kernels = config["litePluginSettings"][KERNELS_PLUGIN]["kernels"]
    assert [k["name"] for k in kernels] == ["python", "graphs-and-yaml"]
    assert kernel_titles(site) == {
        "python": "Python (course)",
        "graphs-and-yaml": "Python (Graphs and YAML)",
    }
    # the two environments have one runtime: one copy of it, one loader
    assert {k["pyodideUrl"] for k in kernels} == {"./static/pyodide/lite-env.mjs"}
    assert not list((site / "static").glob("pyodide-*"))
    # each its own pyodide-lock.json and installed set, the one channel they carry
    options = [k["loadPyodideOptions"] for k in kernels]
    assert [o["lockFileURL"] for o in options] == [
        "./static/lite-env/pyodide-lock.json",
        "./static/lite-env/pyodide-lock-graphs-and-yaml.json",
    ]
    assert [o["liteEnvInstalledURL"] for o in options] == [
        "./static/lite-env/installed.json",
        "./static/lite-env/installed-graphs-and-yaml.json",
    ]
    assert {o["liteEnvChannelURL"] for o in options} == {"./channel/"}
    for option, (name, packages) in zip(options, ENVIRONMENTS.items(), strict=True):
        installed = json.loads((site / option["liteEnvInstalledURL"]).read_text())
        assert set(packages) <= {p["name"] for p in installed}, name
    # the apps the environment file keeps, and no other
    assert (site / "lab" / "index.html").is_file() and (site / "notebooks" / "index.html").is_file()
    assert not (site / "tree").exists() and not (site / "repl").exists()
    # each kernel keeps the piplite settings jupyterlite-pyodide-kernel's addon wrote
    stock = config["litePluginSettings"][KERNEL_PLUGIN]
    assert all(k["pipliteUrls"] == stock["pipliteUrls"] for k in kernels)


def test_chunks_the_environments_share_are_stored_once(built: Build):
    site = built.site.folder
    images = [read_image(*site_image(site, kernel)) for kernel in site_kernels(site)]
    files = [{chunk.file for chunk in image.chunks} for image in images]
    shared = files[0] & files[1]
    # the runtime and the kernel's packages are the same packages in both
    assert len(shared) >= len(KERNEL)
    on_disk = {path.name for path in (site / "static" / "lite-env").glob("*.gz")}
    assert files[0] | files[1] <= on_disk
    assert len(on_disk) < len(files[0]) + len(files[1])


def test_the_addon_builds_the_same_kernels_from_environment_files(built: Build, cache_dir):
    """`jupyter lite build` with LiteEnvAddon.environment_files: the CLI's kernels, images
    and extensions."""
    folder = built.site.folder.parent
    lite_dir = folder / "lite"
    lite_dir.mkdir()
    files = [f"{name.split()[0].lower()}.yml" for name in ENVIRONMENTS]
    for name in files:
        shutil.copyfile(folder / name, lite_dir / name)
    config = {"LiteEnvAddon": {"environment_files": files}}
    (lite_dir / "jupyter_lite_config.json").write_text(json.dumps(config))
    env = {**os.environ, "LITE_ENV_CACHE_DIR": str(cache_dir)}
    done = subprocess.run(
        [sys.executable, "-m", "jupyterlite_core", "build", "--output-dir", "_output"],
        cwd=lite_dir,
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    site = lite_dir / "_output"
    assert site_kernels(site) == site_kernels(built.site.folder)
    assert (site / "extensions" / KERNELS_EXTENSION / "package.json").is_file()
    assert (site / "extensions" / "@jupyter-widgets/jupyterlab-manager" / "package.json").is_file()
    for kernel in site_kernels(site):
        image = read_image(*site_image(site, kernel))
        assert all((site / "static" / "lite-env" / chunk.file).is_file() for chunk in image.chunks)


def test_two_environments_with_one_kernel_name_are_refused(tmp_path, cache_dir, default_channel):
    first = write_environment(tmp_path, "graphs", ("networkx",), default_channel)
    (tmp_path / "again").mkdir()
    second = write_environment(tmp_path / "again", "Graphs!", ("sympy",), default_channel)
    specs = [read_spec(first), read_spec(first), read_spec(second)]  # python, graphs, graphs
    with pytest.raises(LiteEnvError, match=r"the same kernel name \(graphs\)"):
        build_environments([(s, s.options) for s in specs], tmp_path / "site", cache_dir=cache_dir)
    assert not (tmp_path / "site").exists()


@pytest.mark.browser
def test_lite_env_check_starts_every_kernel(built: Build, lite_env):
    done = lite_env("check", built.site.folder, "--json")
    assert done.code == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"]
    assert sorted(report["kernels"]) == ["graphs-and-yaml", "python"]
    for kernel, (modules, _) in OWN.items():
        imported = report["kernels"][kernel]["modules"]
        assert all(imported[m] == "ok" for m in modules), imported
        assert report["kernels"][kernel]["foreign_requests"] == []


@pytest.mark.browser
@pytest.mark.parametrize("kernel", sorted(OWN))
def test_each_kernel_has_its_own_environment(built: Build, kernel: str):
    modules, other = OWN[kernel]
    title = kernel_titles(built.site.folder)[kernel]
    with open_notebook(built.site.folder, kernel=title) as notebook:
        output = run_cell(
            notebook.page,
            "import importlib.util\n"
            f"import {', '.join(modules)}\n"
            f"print('other:', importlib.util.find_spec({other!r}))\n",
        )
        assert "other: None" in output, output
        listing = run_cell(notebook.page, "%conda list")
    for module in modules:
        name = "pyyaml" if module == "yaml" else module
        assert f"\n{name} " in f"\n{listing}", listing
    assert f"\n{other} " not in f"\n{listing}"
