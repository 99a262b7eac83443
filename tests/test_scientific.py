"""The compiled scientific stack: meson-python cross builds (numpy, pandas) with lite-env's
meson cross file, and upstream's own tests run in Pyodide from an image, under node."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import REPOSITORY, runtime_folder, served
from test_compiled import PYTEST_DRIVER, suite_result

from lite_env.channel import recipes as recipes_module
from lite_env.channel.build import build_channel, convert_pinned_wheels
from lite_env.channel.index import index_channel
from lite_env.channel.meson import SIDE_MODULE_FLAGS, cross_file
from lite_env.channel.pypi import resolve
from lite_env.channel.recipes import build_recipe
from lite_env.channel.toolchain import Toolchain, ensure_toolchain
from lite_env.files import sha256
from lite_env.install import install_prefix
from lite_env.pack import PackRules, pack
from lite_env.pyodide_node import run_python_with_loader
from lite_env.solve import solve
from lite_env.spec import read_spec

RECIPES = REPOSITORY / "recipes"
SITE = "lib/python3.14/site-packages"
EXT_SUFFIX = ".cpython-314-wasm32-emscripten.so"
#: The test tools installed beside the stack (numpy's and pandas' conftest import hypothesis).
TEST_TOOLS = ("pytest==9.2.0", "hypothesis==6.155.7")
#: Seconds an upstream suite may run in Pyodide under node (2 busy cores).
SUITE_TIMEOUT = 2400


# -- without the toolchain --------------------------------------------------------------------


def test_the_cross_file_describes_the_runtime(tmp_path):
    toolchain = Toolchain(
        folder=tmp_path, chroot=tmp_path / "chroot", bin=tmp_path / "bin",
        include=tmp_path / "include/python3.14", sysconfig=tmp_path / "sysconfig",
        emscripten="3.1.69", headers="libpython3.14-dev 3.14.10-1", platform="emscripten_5_0_3",
        abi="2026_0", ext_suffix=EXT_SUFFIX,
    )  # fmt: skip
    text = cross_file(toolchain, tmp_path / "side-module.sh", tmp_path / "python")
    lines = text.splitlines()
    for line in (
        "[host_machine]",
        "system = 'emscripten'",
        "cpu_family = 'wasm32'",
        "cpu = 'wasm32'",
        "endian = 'little'",
        f"c = ['{tmp_path}/side-module.sh', '{tmp_path}/bin/emcc']",
        f"cpp = ['{tmp_path}/side-module.sh', '{tmp_path}/bin/em++']",
        f"ar = '{tmp_path}/bin/emar'",
        f"python = '{tmp_path}/python'",
        "exe_wrapper = 'node'",
        "longdouble_format = 'IEEE_QUAD_LE'",
    ):
        assert line in lines, line
    [compile_args] = [line for line in lines if line.startswith("c_args = ")]
    [link_args] = [line for line in lines if line.startswith("c_link_args = ")]
    for flag in ("'-fwasm-exceptions'", "'-sSUPPORT_LONGJMP=wasm'"):
        assert flag in compile_args and flag in link_args
    # every link is not a side module: meson's probes link executables
    assert "SIDE_MODULE" not in text


def test_the_compiler_wrapper_makes_side_modules_of_shared_links_only(tmp_path):
    wrapper = REPOSITORY / "lite_env/channel/scripts/side-module.sh"

    def run(*arguments: str) -> list[str]:
        done = subprocess.run(["sh", str(wrapper), "echo", *arguments], capture_output=True)
        return done.stdout.decode().split()

    shared = ["-shared", "a.o", "-o", "a.so"]
    assert run(*shared) == [*shared, *SIDE_MODULE_FLAGS]
    assert run("probe.c", "-o", "probe.exe") == ["probe.c", "-o", "probe.exe"]
    assert run("-c", "a.c", "-o", "a.o") == ["-c", "a.c", "-o", "a.o"]


def test_an_unchanged_recipe_is_built_once_for_every_channel(tmp_path, monkeypatch):
    recipe = tmp_path / "recipes" / "stamp"
    recipe.mkdir(parents=True)
    (recipe / "recipe.yaml").write_text(
        "package: {name: stamp, version: '1.0'}\n"
        "build:\n  noarch: generic\n  script:\n"
        "    - mkdir -p $PREFIX/share && date +%s%N > $PREFIX/share/stamp\n"
        "about: {license: MIT}\n"
    )
    cache = tmp_path / "cache"
    [first] = build_recipe(recipe, tmp_path / "one", cache_dir=cache)
    with monkeypatch.context() as patch:

        def no_build(*arguments, **options):
            raise AssertionError("an unchanged recipe was built again")

        patch.setattr(recipes_module, "_run_build", no_build)
        [second] = build_recipe(recipe, tmp_path / "two", cache_dir=cache)  # copied, not built
    assert second.name == first.name and sha256(second) == sha256(first)
    assert second.stat().st_mode & 0o777 == 0o644
    # a changed recipe is built again, even with the same package file name
    (recipe / "recipe.yaml").write_text((recipe / "recipe.yaml").read_text() + "# changed\n")
    [third] = build_recipe(recipe, tmp_path / "three", cache_dir=cache)
    assert third.name == first.name and sha256(third) != sha256(first)


# -- with the toolchain (root, Debian's archive, PyPI, npm, node) ------------------------------


@pytest.fixture(scope="module")
def toolchain(cache_dir):
    return ensure_toolchain(cache_dir)


def stack_channel(folder: Path, cache_dir: Path, recipes: tuple[str, ...]) -> Path:
    """The runtime, the named recipes and the pinned pure wheels in a channel, with the test
    tools (a built recipe comes from the cache of built packages when unchanged)."""
    recipes_dir = folder / "recipes"
    recipes_dir.mkdir(parents=True)
    for name in ("pyodide-python", *recipes, "pypi.yaml"):
        (recipes_dir / name).symlink_to(RECIPES / name)
    channel = build_channel(recipes_dir, folder / "channel", cache_dir=cache_dir).channel
    convert_pinned_wheels(resolve(TEST_TOOLS, cache_dir=cache_dir), channel, cache_dir=cache_dir)
    return index_channel(channel)


def stack_image(folder: Path, cache_dir: Path, names: tuple[str, ...]):
    """The packages with their tests (images leave tests/ out unless kept), pytest and
    hypothesis: installed and packed, and the runtime folder to boot it."""
    channel = stack_channel(folder, cache_dir, names)
    (folder / "environment.yml").write_text(
        f"channels: [{channel}]\n"
        f"dependencies: [python 3.14.*, {', '.join(names)}, pytest, hypothesis]\n"
    )
    records = solve(read_spec(folder / "environment.yml"), cache_dir=cache_dir)
    prefix = install_prefix(records, folder / "prefix", cache_dir=cache_dir)
    keep = tuple(f"{SITE}/{name}/**/tests/**" for name in names)
    image = pack(prefix, folder / "image", rules=PackRules(keep=keep))
    return runtime_folder(prefix, folder / "runtime"), image, channel


@pytest.fixture(scope="module")
def numpy_image(tmp_path_factory, cache_dir):
    return stack_image(tmp_path_factory.mktemp("numpy"), cache_dir, ("numpy",))


@pytest.fixture(scope="module")
def pandas_image(tmp_path_factory, cache_dir):
    return stack_image(tmp_path_factory.mktemp("pandas"), cache_dir, ("numpy", "pandas"))


def run_suite_in_pyodide(image, code: str):
    runtime, packed, _ = image
    with served(packed.folder) as base_url:
        options = {"liteEnvManifestURL": f"{base_url}{packed.manifest}", "liteEnvProvides": []}
        return run_python_with_loader(runtime, PYTEST_DRIVER + code, options, timeout=SUITE_TIMEOUT)


def counts(reports: list[list[str]]) -> dict[str, int]:
    found: dict[str, int] = {}
    for _, outcome, _ in reports:
        found[outcome] = found.get(outcome, 0) + 1
    return found


@pytest.mark.slow
def test_the_stack_pins_the_runtime_abi(pandas_image):
    channel = pandas_image[2]
    repodata = json.loads((channel / "emscripten-wasm32" / "repodata.json").read_text())
    depends = {record["name"]: record["depends"] for record in repodata["packages.conda"].values()}
    for name in ("numpy", "pandas"):
        assert "python_abi 3.14.* *_cp314" in depends[name]
        assert "pyodide-abi >=2026.0,<2026.1.0a0" in depends[name]
    assert "numpy >=2.4.6,<3.0a0" in depends["pandas"]  # numpy's run_exports


@pytest.mark.slow
def test_numpy_core_tests_pass_in_pyodide(numpy_image):
    done = run_suite_in_pyodide(
        numpy_image,
        "import numpy\n"
        "print('NUMPY', numpy.__version__, numpy._core._multiarray_umath.__file__)\n"
        "print('SUM', int(numpy.arange(10**6, dtype=numpy.int64).sum()))\n"
        f"run_suite('/{SITE}/numpy', '_core/tests/test_multiarray.py',"
        " '_core/tests/test_umath.py')\n",
    )
    code, reports = suite_result(done)
    assert f"NUMPY 2.4.6 /{SITE}/numpy/_core/_multiarray_umath{EXT_SUFFIX}" in done.stdout
    assert "SUM 499999500000" in done.stdout
    failed = [report for report in reports if report[1] == "failed"]
    assert code == 0 and not failed, (failed[:5], done.stdout[-3000:])
    print("numpy", counts(reports))
    assert counts(reports)["passed"] > 18000


#: pandas' own tests run in Pyodide: a frame, a groupby and two io subsets, and their options.
PANDAS_SUITES = (
    "tests/frame/test_constructors.py",
    "tests/groupby/test_groupby.py",
    "tests/io/formats/test_to_csv.py",
    "tests/io/json/test_pandas.py",
    # pandas' sdist ships no test data (tests/io/json/data): its own flag skips what needs it
    "--no-strict-data-files",
    # they serve files over HTTP with pytest-localserver's `httpserver`: Pyodide has no sockets
    "--deselect=tests/io/json/test_pandas.py::TestPandasContainer::test_url",
    "--deselect=tests/io/json/test_pandas.py::TestPandasContainer::test_url_not_found",
)


@pytest.mark.slow
def test_pandas_frame_groupby_and_io_tests_pass_in_pyodide(pandas_image):
    done = run_suite_in_pyodide(
        pandas_image,
        "import pandas, pandas._libs.window.aggregations as aggregations\n"
        "print('PANDAS', pandas.__version__, aggregations.__file__)\n"
        "frame = pandas.DataFrame({'k': list('abab'), 'v': [1.0, 2.0, 3.0, 4.5]})\n"
        "print('GROUPBY', frame.groupby('k')['v'].sum().to_dict())\n"
        "print('ROLLING', frame['v'].rolling(2).mean().tolist()[1:])\n"
        "print('TZ', pandas.Timestamp('2026-07-01 12:00', tz='Europe/Paris').utcoffset())\n"
        f"run_suite('/{SITE}/pandas', {', '.join(map(repr, PANDAS_SUITES))})\n",
    )
    code, reports = suite_result(done)
    assert f"PANDAS 3.1.1 /{SITE}/pandas/_libs/window/aggregations{EXT_SUFFIX}" in done.stdout
    assert "GROUPBY {'a': 4.0, 'b': 6.5}" in done.stdout
    assert "ROLLING [1.5, 2.5, 3.75]" in done.stdout  # the C++ extension's rolling mean
    assert "TZ 2:00:00" in done.stdout  # tzdata's zone files
    failed = [report for report in reports if report[1] == "failed"]
    assert code == 0 and not failed, (failed[:5], done.stdout[-3000:])
    print("pandas", counts(reports))
    assert counts(reports)["passed"] > 4000
