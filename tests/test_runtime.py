"""The Pyodide runtime as conda packages: recipes/pyodide-python built, indexed and installed."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import stat
import tarfile
import time
import zipfile
from pathlib import Path, PurePosixPath

import pytest
import rattler

from lite_env.channel import recipes
from lite_env.channel.recipes import build_recipe, npm_sources, recipe_outputs
from lite_env.channel.sources import fetch_npm_source
from lite_env.errors import LiteEnvError
from lite_env.install import install_prefix
from lite_env.pyodide_node import run_python
from lite_env.solve import solve
from lite_env.spec import read_spec

RECIPE = Path(__file__).parents[1] / "recipes" / "pyodide-python"
PYODIDE_SHA256 = "66b7949e5a0cba2250b586d7e368bf12fb482800748d182c4618254b685ffaa0"
RUNTIME_FILES = (
    "pyodide.mjs",
    "pyodide.js",
    "pyodide.asm.mjs",
    "pyodide.asm.wasm",
    "pyodide-lock.json",
    "package.json",
)


@pytest.fixture(scope="module")
def runtime_channel(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Path:
    """A channel holding the runtime built from the recipe, indexed."""
    channel = tmp_path_factory.mktemp("runtime") / "channel"
    started = time.perf_counter()
    build_recipe(RECIPE, channel, cache_dir=cache_dir)
    print(f"runtime recipe built in {time.perf_counter() - started:.1f} s")
    asyncio.run(rattler.index.index_fs(channel, write_zst=True, write_shards=True, force=True))
    return channel


def repodata(channel: Path, subdir: str) -> dict[str, dict]:
    document = json.loads((channel / subdir / "repodata.json").read_text())
    return {record["name"]: record for record in document["packages.conda"].values()}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- without building --------------------------------------------------------------------------


def test_the_recipe_names_its_outputs_without_building():
    outputs = recipe_outputs(RECIPE)
    names = {path.name.rsplit("-", 2)[0]: path for path in outputs}
    assert set(names) == {"python", "python_abi", "pyodide-abi"}
    python = names["python"]
    assert python.parent == PurePosixPath("emscripten-wasm32")
    assert python.name.startswith("python-3.14.2-h")
    assert python.name.endswith("_0_pyodide_cp314.conda")
    assert names["python_abi"] == PurePosixPath("emscripten-wasm32/python_abi-3.14-8_cp314.conda")
    assert names["pyodide-abi"].parent == PurePosixPath("noarch")


def test_the_recipe_pins_the_npm_tarball():
    [source] = npm_sources(RECIPE)
    assert (source.spec, source.file, source.sha256) == (
        "pyodide@314.0.7",
        "pyodide-314.0.7.tgz",
        PYODIDE_SHA256,
    )


def fake_npm(folder: Path, script: str) -> str:
    """A PATH whose only `npm` runs `script` (arguments: pack SPEC --ignore-scripts ... DIR)."""
    folder.mkdir()
    npm = folder / "npm"
    npm.write_text(f"#!/bin/sh\n{script}\n")
    npm.chmod(0o755)
    return str(folder)


def test_missing_npm_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LiteEnvError, match="npm is not installed"):
        build_recipe(RECIPE, tmp_path / "channel", cache_dir=tmp_path / "cache")
    assert not (tmp_path / "channel").exists()


def test_failing_npm_pack_is_a_clear_error(tmp_path, monkeypatch):
    path = fake_npm(tmp_path / "bin", 'echo "npm error 404 Not Found" >&2; exit 1')
    monkeypatch.setenv("PATH", path)
    with pytest.raises(LiteEnvError, match=r"`npm pack pyodide@314.0.7` failed") as error:
        build_recipe(RECIPE, tmp_path / "channel", cache_dir=tmp_path / "cache")
    assert "404 Not Found" in error.value.hint


def test_a_tarball_with_another_sha256_is_refused(tmp_path, monkeypatch):
    path = fake_npm(tmp_path / "bin", 'echo "not pyodide" > "$5/pyodide-314.0.7.tgz"')
    monkeypatch.setenv("PATH", path)
    with pytest.raises(LiteEnvError, match=f"the recipe pins {PYODIDE_SHA256}"):
        build_recipe(RECIPE, tmp_path / "channel", cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache" / "npm" / "pyodide-314.0.7.tgz").exists()
    assert not (tmp_path / "channel").exists()


def test_a_failing_build_shows_the_log_tail(tmp_path):
    recipe = tmp_path / "broken"
    recipe.mkdir()
    (recipe / "recipe.yaml").write_text(
        "package: {name: broken, version: '1.0'}\n"
        "build:\n  script:\n    - echo 'compiling the broken thing'\n    - exit 3\n"
        "about: {license: MIT}\n"
    )
    with pytest.raises(LiteEnvError, match="rattler-build failed") as error:
        build_recipe(recipe, tmp_path / "channel", cache_dir=tmp_path / "cache")
    assert "compiling the broken thing" in error.value.hint
    assert not list((tmp_path / "channel").rglob("*.conda"))


# -- building the real runtime (npm) --------------------------------------------------------


@pytest.mark.slow
def test_the_runtime_packages_are_in_the_channel(runtime_channel):
    wasm = repodata(runtime_channel, "emscripten-wasm32")
    noarch = repodata(runtime_channel, "noarch")
    python = wasm["python"]
    assert python["version"] == "3.14.2"
    assert python["build"].endswith("_0_pyodide_cp314")
    assert python["depends"] == ["python_abi 3.14.* *_cp314", "pyodide-abi 2026.0.*"]
    assert python["license"] == "MPL-2.0"
    assert wasm["python_abi"]["build"] == "8_cp314"
    assert wasm["python_abi"]["constrains"] == ["python 3.14.* *_cp314"]
    assert noarch["pyodide-abi"]["version"] == "2026.0"
    assert noarch["pyodide-abi"]["noarch"] == "generic"
    expected = {runtime_channel / path for path in recipe_outputs(RECIPE)}
    assert set(runtime_channel.rglob("*.conda")) == expected
    for package in expected:
        assert stat.S_IMODE(package.stat().st_mode) == 0o644


@pytest.mark.slow
def test_python_exports_its_abi_to_packages_built_against_it(runtime_channel):
    [python] = (runtime_channel / "emscripten-wasm32").glob("python-3.14.2-*.conda")
    assert python.stat().st_size < 8_000_000  # the npm tarball is not copied into info/recipe
    record = repodata(runtime_channel, "emscripten-wasm32")["python"]
    assert record["run_exports"]["weak"] == [
        "python_abi 3.14.* *_cp314",
        "pyodide-abi >=2026.0,<2026.1.0a0",
    ]


@pytest.mark.slow
def test_installing_python_puts_pyodide_in_share(runtime_channel, cache_dir, tmp_path):
    (tmp_path / "environment.yml").write_text(
        f"channels: [{runtime_channel}]\ndependencies: [python 3.14.*]\n"
    )
    records = solve(read_spec(tmp_path / "environment.yml"), cache_dir=tmp_path / "cache")
    assert {r.name.normalized for r in records} == {"python", "python_abi", "pyodide-abi"}
    prefix = install_prefix(records, tmp_path / "prefix", cache_dir=tmp_path / "cache")

    tarball = fetch_npm_source(npm_sources(RECIPE)[0], cache_dir=cache_dir)
    assert sha256(tarball.read_bytes()) == PYODIDE_SHA256
    with tarfile.open(tarball) as archive:
        expected = {
            member.name.removeprefix("package/"): sha256(archive.extractfile(member).read())
            for member in archive.getmembers()
            if member.isfile()
        }
    runtime = prefix / "share" / "pyodide"
    for name in RUNTIME_FILES:
        assert sha256((runtime / name).read_bytes()) == expected[name], name
    assert json.loads((runtime / "pyodide-lock.json").read_text())["info"]["python"] == "3.14.2"
    # Pyodide's stdlib zip, with CPython's pure-Python zoneinfo added (Pyodide leaves it out)
    with (
        tarfile.open(tarball) as archive,
        zipfile.ZipFile(archive.extractfile("package/python_stdlib.zip")) as upstream,
        zipfile.ZipFile(runtime / "python_stdlib.zip") as ours,
    ):
        assert set(ours.namelist()) == {*upstream.namelist(), "zoneinfo/_zoneinfo.py"}
        for name in upstream.namelist():
            assert ours.read(name) == upstream.read(name), name
    done = run_python(
        prefix,
        "from zoneinfo._zoneinfo import ZoneInfo\n"
        "import zoneinfo, _zoneinfo\n"
        "print('PURE', ZoneInfo is not zoneinfo.ZoneInfo,"
        " zoneinfo.ZoneInfo is _zoneinfo.ZoneInfo)\n",
    )
    assert "PURE True True" in done.stdout, done.stderr[-2000:]


@pytest.mark.slow
def test_a_second_build_is_skipped(runtime_channel, cache_dir, monkeypatch):
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in runtime_channel.rglob("*.conda")}

    def no_build(*args, **kwargs):
        raise AssertionError("rattler-build ran for outputs the channel already holds")

    monkeypatch.setattr(recipes, "_run_build", no_build)
    packages = build_recipe(RECIPE, runtime_channel, cache_dir=cache_dir)
    assert set(packages) == set(before)
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in packages} == before


@pytest.mark.slow
def test_a_missing_output_is_added_without_touching_the_others(
    runtime_channel, cache_dir, tmp_path
):
    channel = tmp_path / "channel"
    shutil.copytree(runtime_channel, channel)
    [marker] = (channel / "noarch").glob("pyodide-abi-*.conda")
    marker.unlink()
    kept = {p: p.read_bytes() for p in channel.rglob("*.conda")}

    packages = build_recipe(RECIPE, channel, cache_dir=cache_dir)

    assert marker in packages and marker.is_file()
    assert stat.S_IMODE(marker.stat().st_mode) == 0o644
    assert {p: p.read_bytes() for p in kept} == kept
    assert not list(channel.rglob("*.part"))
