"""C++ with the emscripten toolchain: its libc++ headers against the runtime's libc++ (the
layout check), and kiwisolver, a C++ recipe, built and tested in Pyodide from an image."""

from __future__ import annotations

import json
import time

import pytest
from conftest import REPOSITORY, conda_package
from test_compiled import (
    PYTEST_DRIVER,
    SITE,
    SUITES,
    packed_image,
    recipe_channel,
    run_in_pyodide,
    suite_result,
    upstream_suites,
)

from lite_env.channel.cxx_check import (
    ROUND_TRIP,
    RUNTIME_LAYOUT,
    check_cxx_layout,
    layout_differences,
    round_trip_differences,
)
from lite_env.channel.index import index_channel
from lite_env.channel.libcxx import tree_sha256
from lite_env.channel.toolchain import CFLAGS, LDFLAGS, RUNTIME_FILE, ensure_toolchain
from lite_env.errors import LiteEnvError

KIWISOLVER = REPOSITORY / "recipes" / "kiwisolver"
EXT = f"{SITE}/kiwisolver/_cext.cpython-314-wasm32-emscripten.so"
#: Trixie's emscripten 3.1.69 keeps its own libc++ 18 headers here, inside the chroot.
OLD_HEADERS = (
    "-nostdinc++ -isystem /usr/share/emscripten/system/lib/libcxx/include"
    " -isystem /usr/share/emscripten/system/lib/libcxxabi/include"
)


# -- without the toolchain --------------------------------------------------------------------


def test_layout_differences_name_each_type_and_flag():
    found = json.loads(json.dumps(RUNTIME_LAYOUT))
    assert layout_differences(found, RUNTIME_LAYOUT) == []
    found["libcpp_version"] = 180100
    found["flags"].remove("IOS_ALLOW_ARBITRARY_FILL_VALUE")
    found["types"]["std::basic_ios<char>"] = [80, 4]
    del found["types"]["std::locale"]
    differences = layout_differences(found, RUNTIME_LAYOUT)
    assert "libcpp_version is 180100 here, 210108 in the runtime" in differences
    assert any(d.startswith("flags is [") for d in differences)
    assert "std::basic_ios<char> is 80 bytes (align 4) here, 84 (align 4) in the runtime" in (
        differences
    )
    assert "std::locale is missing here, 4 (align 4) in the runtime" in differences
    assert len(differences) == 4


def test_round_trip_differences_skip_parts_that_did_not_run():
    found = {"overrun": {**ROUND_TRIP["overrun"], "std::ostringstream": 2}, "format": "x"}
    assert round_trip_differences(found, ROUND_TRIP) == [
        "the runtime wrote 2 bytes past the end of a std::ostringstream",
        f"format gave 'x', expected {ROUND_TRIP['format']!r}",
    ]
    assert round_trip_differences(dict(ROUND_TRIP), ROUND_TRIP) == []


def test_the_header_tree_digest_covers_paths_and_contents(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "string").write_text("class string;\n")
    (tmp_path / "__config_site").write_text("#define _LIBCPP_ABI_VERSION 2\n")
    digest = tree_sha256(tmp_path)
    (tmp_path / ".lite-env-libcxx").write_text(digest)  # the marker is not part of the tree
    assert tree_sha256(tmp_path) == digest
    (tmp_path / "__config_site").write_text("#define _LIBCPP_ABI_VERSION 1\n")
    assert tree_sha256(tmp_path) != digest
    (tmp_path / "__config_site").write_text("#define _LIBCPP_ABI_VERSION 2\n")
    (tmp_path / "a" / "string").rename(tmp_path / "a" / "vector")
    assert tree_sha256(tmp_path) != digest


# -- with the toolchain (root, Debian's archive, PyPI, npm, node) ------------------------------


@pytest.fixture(scope="module")
def toolchain(cache_dir):
    return ensure_toolchain(cache_dir)


@pytest.mark.slow
def test_the_toolchain_has_the_runtime_libcxx_layout(toolchain):
    stamp = json.loads((toolchain.folder / "stamp.json").read_text())
    assert toolchain.libcxx == "emscripten=6.0.5+dfsg+~1.41.5-2"
    assert stamp["libcxx"]["wanted"]["suite"] == "sid"
    assert stamp["cxx_layout"]["libcpp_version"] == 210108
    assert stamp["cxx_layout"]["types"]["std::basic_ios<char>"] == [84, 4]
    assert stamp["cxx_layout"]["types"]["std::ostringstream"] == [140, 4]
    check = json.loads((toolchain.folder / "cxx-check" / "check.json").read_text())
    assert check["round_trip"]["overrun"]["std::ostringstream"] == 0
    assert check["round_trip"]["format"] == "    42|***3.142|ab***|0xff|1.23e+04|   7"


@pytest.mark.slow
def test_the_check_catches_libcxx_18_headers(toolchain, cache_dir, tmp_path):
    """The headers trixie's emscripten ships: the runtime writes past their ostringstream."""
    folder = tmp_path / "old"
    folder.mkdir()
    started = time.monotonic()
    with pytest.raises(LiteEnvError) as caught:
        check_cxx_layout(
            folder,
            toolchain.bin / "em++",
            lambda: cache_dir / "npm" / RUNTIME_FILE,
            flags=f"{CFLAGS} {LDFLAGS} {OLD_HEADERS}",
            inputs={},
        )
    message = caught.value.message
    assert message.startswith("the toolchain's C++ standard library headers do not match")
    assert "libcpp_version is 180100 here, 210108 in the runtime" in message
    assert "std::basic_ios<char> is 80 bytes (align 4) here, 84 (align 4)" in message
    assert "bytes past the end of a std::ostringstream" in message
    assert "210108" in caught.value.hint
    assert not (folder / "cxx-check" / "check.json").exists()  # a failed check is not kept
    assert time.monotonic() - started < 120


@pytest.fixture(scope="module")
def kiwisolver_channel(tmp_path_factory, cache_dir, toolchain):
    """The runtime and kiwisolver in a channel, with pytest and kiwisolver's own tests."""
    folder = tmp_path_factory.mktemp("cxx")
    channel = recipe_channel(folder, ("pyodide-python", "kiwisolver"), cache_dir)
    files = upstream_suites(cache_dir, {"kiwisolver": ("py/tests/",)})
    conda_package(channel, "kiwisolver-suite", "1.0", files=files)
    index_channel(channel)
    return channel


@pytest.fixture(scope="module")
def kiwisolver_image(kiwisolver_channel, tmp_path_factory, cache_dir):
    folder = tmp_path_factory.mktemp("cxx-image")
    packages = ("kiwisolver", "pytest", "kiwisolver-suite")
    return packed_image(kiwisolver_channel, packages, folder, cache_dir)


@pytest.mark.slow
def test_kiwisolver_pins_the_runtime_abi(kiwisolver_channel):
    repodata = json.loads((kiwisolver_channel / "emscripten-wasm32" / "repodata.json").read_text())
    [depends] = [
        record["depends"]
        for record in repodata["packages.conda"].values()
        if record["name"] == "kiwisolver"
    ]
    assert "python_abi 3.14.* *_cp314" in depends
    assert "pyodide-abi >=2026.0,<2026.1.0a0" in depends


@pytest.mark.slow
def test_kiwisolver_upstream_suite_passes_in_pyodide(kiwisolver_image):
    code = PYTEST_DRIVER + (
        "import kiwisolver, kiwisolver._cext as cext\n"
        "print('CEXT', cext.__file__)\n"
        "x, y = kiwisolver.Variable('x'), kiwisolver.Variable('y')\n"
        "solver = kiwisolver.Solver()\n"
        "for constraint in (x + y == 20, x - y >= 4, (x == 15) | 'weak'):\n"
        "    solver.addConstraint(constraint)\n"
        "solver.updateVariables()\n"
        "print('SOLVED', x.value(), y.value())\n"
        "print('REPR', repr(2 * x + 0.5 <= 10))  # formatted by a std::stringstream\n"
        "print('DUMP', len(solver.dumps()) > 100)\n"
        f"run_suite('/{SUITES}/kiwisolver/py/tests')\n"
    )
    done = run_in_pyodide(kiwisolver_image, code)
    code, reports = suite_result(done)
    assert f"CEXT /{EXT}" in done.stdout
    assert "SOLVED 15.0 5.0" in done.stdout
    assert "REPR 2 * x + -9.5 <= 0 | strength = 1.001e+09" in done.stdout
    assert "DUMP True" in done.stdout
    failed = [report for report in reports if report[1] == "failed"]
    assert code == 0 and not failed, failed[:5]
    passed = [nodeid for nodeid, outcome, _ in reports if outcome == "passed"]
    print(f"kiwisolver suite: {len(passed)} passed, {len(reports) - len(passed)} other")
    assert len(passed) >= 50, len(passed)
