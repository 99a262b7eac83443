"""Compiled packages: the emscripten toolchain, recipes built with it, and their upstream test
suites run in Pyodide from an image, booted through the loader."""

from __future__ import annotations

import json
import tarfile
import time
from pathlib import Path

import pytest
from conftest import REPOSITORY, conda_package, runtime_folder, served

from lite_env.channel import toolchain as toolchain_module
from lite_env.channel.build import build_channel
from lite_env.channel.debian import debian_mirror
from lite_env.channel.index import index_channel
from lite_env.channel.pypi import convert_pinned_wheels, resolve
from lite_env.channel.recipes import (
    build_recipe,
    fetch_source,
    order_recipes,
    recipe_sources,
)
from lite_env.channel.sources import PypiSource
from lite_env.channel.toolchain import cross_sysconfigdata, ensure_toolchain, wasm_pyconfig
from lite_env.errors import LiteEnvError
from lite_env.install import install_prefix
from lite_env.pack import PackRules, pack
from lite_env.pyodide_node import run_python_with_loader
from lite_env.solve import solve
from lite_env.spec import read_spec

RECIPES = REPOSITORY / "recipes"
COMPILED = ("libyaml", "markupsafe", "pyyaml")
SITE = "lib/python3.14/site-packages"
EXT_SUFFIX = ".cpython-314-wasm32-emscripten.so"
#: Where the test image puts the upstream test suites (kept although they hold `tests/`).
SUITES = "share/lite-env-suites"
#: Runs pytest in a folder of the image; prints one line: RESULT {exit code, reports}.
PYTEST_DRIVER = """
import json, os, sys
import pytest

class Outcomes:
    def __init__(self):
        self.reports = []

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or report.outcome != "passed":
            longrepr = report.longrepr
            skip = report.skipped and isinstance(longrepr, tuple)
            detail = longrepr[2] if skip else str(longrepr or "")
            outcome = report.outcome
            if hasattr(report, "wasxfail"):  # an expected failure, or one that passed
                outcome = "xpassed" if report.passed else "xfailed"
            self.reports.append([report.nodeid, outcome, str(detail)[-2000:]])

def run_suite(folder, *args):
    os.chdir(folder)
    outcomes = Outcomes()
    code = pytest.main(["-q", "-p", "no:cacheprovider", *args], plugins=[outcomes])
    sys.__stdout__.write("RESULT " + json.dumps([int(code), outcomes.reports]) + "\\n")
"""


# -- without the toolchain --------------------------------------------------------------------


def test_pyconfig_takes_every_value_from_the_runtime():
    debian = (
        "#ifndef Py_PYCONFIG_H\n#define Py_PYCONFIG_H\n"
        "#define SIZEOF_LONG 8\n/* #undef WITH_DTRACE */\n#define WITH_PYMALLOC 1\n"
        "#define HAVE_NEW_IN_3_14_10 1\n#ifndef _GNU_SOURCE\n# define _GNU_SOURCE 1\n#endif\n"
        "#define _FILE_OFFSET_BITS 64\n#endif /*Py_PYCONFIG_H*/\n"
    )
    runtime = {"SIZEOF_LONG": 4, "WITH_DTRACE": 1, "WITH_PYMALLOC": 0}
    lines = wasm_pyconfig(debian, runtime).splitlines()
    assert "#define SIZEOF_LONG 4" in lines
    assert "#define WITH_DTRACE 1" in lines
    assert "/* #undef WITH_PYMALLOC */" in lines  # sysconfig stores an #undef as 0
    assert "/* #undef HAVE_NEW_IN_3_14_10 */" in lines  # unknown to the runtime
    # the include guard and what sysconfig does not parse stay as Debian wrote them
    for line in ("#define Py_PYCONFIG_H", "# define _GNU_SOURCE 1", "#define _FILE_OFFSET_BITS 64"):
        assert line in lines


def test_cross_sysconfigdata_points_setuptools_at_the_toolchain(tmp_path):
    from lite_env.channel.toolchain import Toolchain

    toolchain = Toolchain(
        folder=tmp_path, chroot=tmp_path / "chroot", bin=tmp_path / "bin",
        include=tmp_path / "include/python3.14", sysconfig=tmp_path / "sysconfig",
        emscripten="3.1.69", headers="libpython3.14-dev 3.14.10-1", platform="emscripten_5_0_3",
        abi="2026_0", ext_suffix=".cpython-314-wasm32-emscripten.so",
    )  # fmt: skip
    source = "build_time_vars = {'CC': 'cc', 'EXT_SUFFIX': '.cpython-314-wasm32-emscripten.so'}\n"
    namespace: dict = {}
    exec(cross_sysconfigdata(source, toolchain), namespace)
    variables = namespace["build_time_vars"]
    assert variables["CC"] == str(tmp_path / "bin/emcc")
    assert variables["LDSHARED"].startswith(f"{tmp_path}/bin/emcc ")
    assert "-sSIDE_MODULE=1" in variables["LDSHARED"]
    assert variables["INCLUDEPY"] == str(tmp_path / "include/python3.14")
    assert variables["EXT_SUFFIX"] == ".cpython-314-wasm32-emscripten.so"
    assert toolchain.wheel_platform == "pyemscripten_2026_0_wasm32"


def test_the_debian_mirror_comes_from_the_host_or_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LITE_ENV_DEBIAN_MIRROR", "http://mirror.invalid/debian/")
    assert debian_mirror() == "http://mirror.invalid/debian"
    monkeypatch.delenv("LITE_ENV_DEBIAN_MIRROR")
    # the host's apt sources: security archives and foreign releases are skipped
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "# none here\ndeb http://security.invalid/debian-security bookworm-security main\n"
    )
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://ubuntu.invalid/ubuntu\nSuites: noble\n\n"
        "Types: deb deb-src\nURIs: http://mirror.invalid/debian/\nSuites: bookworm\n"
    )
    assert debian_mirror(tmp_path) == "http://mirror.invalid/debian"
    (tmp_path / "sources.list.d" / "debian.sources").unlink()
    with pytest.raises(LiteEnvError, match="cannot find a Debian mirror"):
        debian_mirror(tmp_path)


def test_recipes_are_built_after_those_they_need():
    order = [path.name for path in order_recipes(sorted(RECIPES.glob("*/")))]
    assert order.index("libyaml") < order.index("pyyaml")
    assert order.index("pyodide-python") < order.index("markupsafe")
    assert order.index("pyodide-python") < order.index("pyyaml")


def test_compiled_recipes_pin_their_sources():
    sources = {s.file: s for name in COMPILED for s in recipe_sources(RECIPES / name)}
    assert sources["markupsafe-3.0.3.tar.gz"] == PypiSource(
        "markupsafe==3.0.3",
        "markupsafe-3.0.3.tar.gz",
        "722695808f4b6457b320fdc131280796bdceb04ab50fe1795cd540799ebe1698",
    )
    assert sources["libyaml_0.2.5.orig.tar.gz"].version == "0.2.5-2"
    assert all(len(source.sha256) == 64 for source in sources.values())


def test_an_unknown_toolchain_is_a_clear_error(tmp_path):
    recipe = tmp_path / "odd"
    recipe.mkdir()
    (recipe / "recipe.yaml").write_text(
        "package: {name: odd, version: '1.0'}\nbuild:\n  script: [echo]\n"
        "about: {license: MIT}\nextra: {toolchain: wasi}\n"
    )
    with pytest.raises(LiteEnvError, match="unknown extra.toolchain 'wasi'"):
        build_recipe(recipe, tmp_path / "channel", cache_dir=tmp_path / "cache")


def test_a_pypi_source_needs_a_pinned_source_entry(tmp_path):
    recipe = tmp_path / "unpinned"
    recipe.mkdir()
    (recipe / "recipe.yaml").write_text(
        "package: {name: unpinned, version: '1.0'}\nbuild:\n  script: [echo]\n"
        "about: {license: MIT}\n"
        "extra: {pypi-sources: [{spec: unpinned==1.0, file: unpinned-1.0.tar.gz}]}\n"
    )
    with pytest.raises(LiteEnvError, match="pypi-sources entry .* needs spec, a file and a"):
        build_recipe(recipe, tmp_path / "channel", cache_dir=tmp_path / "cache")


# -- with the toolchain (root, Debian's archive, PyPI, npm, node) ------------------------------


@pytest.fixture(scope="module")
def toolchain(cache_dir):
    return ensure_toolchain(cache_dir)


@pytest.mark.slow
def test_a_second_toolchain_setup_is_cached(toolchain, cache_dir, monkeypatch):
    def no_tool(command, **kwargs):
        raise AssertionError(f"the cached toolchain ran {command[0]}")

    monkeypatch.setattr(toolchain_module, "run", no_tool)
    monkeypatch.setattr(toolchain_module, "fetch_npm_source", no_tool)
    again = ensure_toolchain(cache_dir)
    assert again == toolchain
    stamp = json.loads((toolchain.folder / "stamp.json").read_text())
    assert stamp["emscripten"].startswith("3.1.")
    assert stamp["runtime"]["abi"] == "2026_0"
    assert toolchain.env()["LITE_ENV_EXT_SUFFIX"] == ".cpython-314-wasm32-emscripten.so"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory, cache_dir, toolchain):
    """The runtime and the compiled recipes in a channel, with pytest and the test suites."""
    folder = tmp_path_factory.mktemp("compiled")
    recipes = folder / "recipes"
    recipes.mkdir()
    for name in ("pyodide-python", *COMPILED):
        (recipes / name).symlink_to(RECIPES / name)
    channel = build_channel(recipes, folder / "channel", cache_dir=cache_dir).channel
    pytest_wheels = resolve(["pytest==9.2.0"], cache_dir=cache_dir)
    convert_pinned_wheels(pytest_wheels, channel, cache_dir=cache_dir)
    suites = upstream_suites(
        cache_dir, {"markupsafe": ("tests/", "pyproject.toml"), "pyyaml": ("tests/",)}
    )
    conda_package(channel, "upstream-suites", "1.0", files=suites)
    index_channel(channel)
    return channel


def upstream_suites(cache_dir: Path, keep: dict[str, tuple[str, ...]]) -> dict[str, bytes]:
    """Files of recipes' sdists (recipe name: path prefixes kept; the recipe's first source
    is its own sdist), under share/lite-env-suites/<name>/."""
    files = {}
    for name, prefixes in keep.items():
        sdist = fetch_source(recipe_sources(RECIPES / name)[0], cache_dir=cache_dir)
        files |= sdist_files(sdist, name, prefixes)
    return files


def sdist_files(sdist: Path, name: str, prefixes: tuple[str, ...]) -> dict[str, bytes]:
    """The files of an sdist under the path prefixes, as share/lite-env-suites/<name>/..."""
    files = {}
    with tarfile.open(sdist) as archive:
        for member in archive.getmembers():
            path = member.name.split("/", 1)[-1]
            if member.isfile() and path.startswith(prefixes):
                files[f"{SUITES}/{name}/{path}"] = archive.extractfile(member).read()
    return files


@pytest.fixture(scope="module")
def image(compiled, tmp_path_factory, cache_dir):
    """An environment with both packages, pytest and the suites: installed and packed."""
    folder = tmp_path_factory.mktemp("compiled-image")
    packages = ("markupsafe", "pyyaml", "pytest", "upstream-suites")
    return packed_image(compiled, packages, folder, cache_dir)


def packed_image(channel: Path, packages: tuple[str, ...], folder: Path, cache_dir: Path):
    """Python 3.14 and the packages from the channel, installed and packed (suites kept):
    (the runtime's folder with the loader, the image, the names of the packages solved)."""
    (folder / "environment.yml").write_text(
        f"channels: [{channel}]\ndependencies: [python 3.14.*, {', '.join(packages)}]\n"
    )
    records = solve(read_spec(folder / "environment.yml"), cache_dir=cache_dir)
    prefix = install_prefix(records, folder / "prefix", cache_dir=cache_dir)
    image = pack(prefix, folder / "image", rules=PackRules(keep=(f"{SUITES}/**",)))
    return runtime_folder(prefix, folder / "runtime"), image, {r.name.normalized for r in records}


def recipe_channel(folder: Path, recipes: tuple[str, ...], cache_dir: Path) -> Path:
    """The named recipes of recipes/ (`pypi.yaml` among them, if named) built into
    folder/channel, with pytest's wheel (built packages come from the cache when unchanged)."""
    recipes_dir = folder / "recipes"
    recipes_dir.mkdir()
    for name in recipes:
        (recipes_dir / name).symlink_to(RECIPES / name)
    started = time.monotonic()
    channel = build_channel(recipes_dir, folder / "channel", cache_dir=cache_dir).channel
    print(f"{folder.name} channel built in {time.monotonic() - started:.1f} s")
    convert_pinned_wheels(
        resolve(["pytest==9.2.0"], cache_dir=cache_dir), channel, cache_dir=cache_dir
    )
    return channel


def run_json(image, code: str) -> dict:
    """Run code in Pyodide; it prints one line `JSON {...}`, returned as a dict."""
    done = run_in_pyodide(image, code)
    assert done.returncode == 0, done.stderr[-3000:]
    [line] = [line for line in done.stdout.splitlines() if line.startswith("JSON ")]
    return json.loads(line.removeprefix("JSON "))


def run_in_pyodide(image, code: str, *, timeout: float = 600):
    """Boot Pyodide under node through lite-env's loader with the image, and run code (for at
    most `timeout` seconds)."""
    runtime, packed, _ = image
    with served(packed.folder) as base_url:
        options = {"liteEnvManifestURL": f"{base_url}{packed.manifest}", "liteEnvProvides": []}
        return run_python_with_loader(runtime, code, options, timeout=timeout)


def suite_result(done) -> tuple[int, list[list[str]]]:
    assert done.returncode == 0, done.stderr[-3000:]
    [line] = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    return json.loads(line.removeprefix("RESULT "))


@pytest.mark.slow
def test_compiled_packages_pin_the_runtime_abi(compiled):
    repodata = json.loads((compiled / "emscripten-wasm32" / "repodata.json").read_text())
    depends = {record["name"]: record["depends"] for record in repodata["packages.conda"].values()}
    for name in ("markupsafe", "pyyaml"):
        assert "python_abi 3.14.* *_cp314" in depends[name]
        assert "pyodide-abi >=2026.0,<2026.1.0a0" in depends[name]
    assert "libyaml >=0.2.5,<0.3.0a0" in depends["pyyaml"]  # libyaml's run_exports
    assert "pyodide-abi >=2026.0,<2026.1.0a0" in depends["libyaml"]


@pytest.mark.slow
def test_the_solve_brings_libyaml_with_pyyaml(image):
    assert {"python", "markupsafe", "pyyaml", "libyaml", "pytest"} <= image[2]


@pytest.mark.slow
def test_markupsafe_upstream_suite_passes_with_the_c_speedups(image):
    code = PYTEST_DRIVER + (
        "import markupsafe, markupsafe._speedups as speedups\n"
        "print('SPEEDUPS', speedups.__file__)\n"
        "print('ACTIVE', markupsafe._escape_inner is speedups._escape_inner)\n"
        f"run_suite('/{SUITES}/markupsafe')\n"
    )
    done = run_in_pyodide(image, code)
    code, reports = suite_result(done)
    assert f"SPEEDUPS /{SITE}/markupsafe/_speedups{EXT_SUFFIX}" in done.stdout
    assert "ACTIVE True" in done.stdout  # the package uses the C extension by default
    failed = [report for report in reports if report[1] == "failed"]
    assert code == 0 and not failed, failed
    passed = [nodeid for nodeid, outcome, _ in reports if outcome == "passed"]
    assert len(passed) >= 70
    # every test ran against both implementations; the C one is never skipped as missing
    assert any(nodeid.endswith("[markupsafe._speedups]") for nodeid in passed)
    assert "tests/test_ext_init.py::test_ext_init[markupsafe._speedups]" in passed
    assert not [report for report in reports if "speedups unavailable" in report[2]]


@pytest.mark.slow
def test_pyyaml_upstream_suite_passes_with_libyaml(image):
    code = PYTEST_DRIVER + (
        "import os, yaml, yaml._yaml\n"
        "os.environ['PYYAML_FORCE_LIBYAML'] = '1'  # the suite's conftest then demands _yaml\n"
        "print('LIBYAML', yaml.__with_libyaml__, yaml._yaml.__file__)\n"
        "print('VERSION', yaml._yaml.get_version_string())\n"
        "print('LINK', os.readlink('/usr/lib/libyaml.so'))\n"
        "loaded = yaml.load('a: [1, 2.5, null]', Loader=yaml.CSafeLoader)\n"
        "parser = [f'{c.__module__}.{c.__name__}' for c in yaml.CSafeLoader.__mro__][1]\n"
        "print('LOADED', loaded, 'by', parser)\n"
        f"run_suite('/{SUITES}/pyyaml', 'tests/legacy_tests')\n"
    )
    done = run_in_pyodide(image, code)
    code, reports = suite_result(done)
    assert f"LIBYAML True /{SITE}/yaml/_yaml{EXT_SUFFIX}" in done.stdout
    assert "VERSION 0.2.5" in done.stdout
    assert "LINK /lib/libyaml.so" in done.stdout  # the loader links conda's lib/ into /usr/lib
    # the C loader parses with the extension's CParser (libyaml)
    assert "LOADED {'a': [1, 2.5, None]} by yaml._yaml.CParser" in done.stdout
    failed = [report for report in reports if report[1] == "failed"]
    assert code == 0 and not failed, failed[:5]
    passed = [nodeid for nodeid, outcome, _ in reports if outcome == "passed"]
    ext = [nodeid for nodeid in passed if "test_yaml_ext.py" in nodeid]
    assert len(passed) > 1000 and len(ext) > 500, (len(passed), len(ext))
