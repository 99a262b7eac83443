"""PyPI wheels → noarch conda packages: resolved for Pyodide, verified, reproducible, servable.

These tests download real wheels with pip from the package index.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conda_package_streaming.package_streaming import CondaComponent, stream_conda_component
from conftest import index_channel, runtime_packages

from lite_env.channel.pins import read_pins
from lite_env.channel.pypi import WheelStore
from lite_env.channel.wheel import conda_name, convert_wheel, read_wheel
from lite_env.verify import channel_records, unresolved_depends, verify_package


def info_json(package: Path, name: str) -> dict:
    for tar, member in stream_conda_component(str(package), component=CondaComponent.info):
        if member.name == f"info/{name}":
            return json.loads(tar.extractfile(member).read())
    raise KeyError(name)


@pytest.fixture
def ipython_channel(tmp_path, lite_env) -> Path:
    """A channel built from `add-pypi ipython==9.18.1` plus the stand-in runtime."""
    recipes = tmp_path / "recipes"
    result = lite_env("channel", "add-pypi", "--recipes", recipes, "ipython==9.18.1")
    assert result.code == 0, result.stderr
    result = lite_env("channel", "build", recipes, "-o", tmp_path / "channel")
    assert result.code == 0, result.stderr
    runtime_packages(tmp_path / "channel")
    return index_channel(tmp_path / "channel")


def test_add_pypi_evaluates_markers_for_pyodide(ipython_channel, tmp_path):
    pinned = {pin.name for pin in read_pins(tmp_path / "recipes").wheels}
    assert {"ipython", "jedi", "parso", "traitlets", "prompt-toolkit", "stack-data"} <= pinned
    # needed on linux, mac or windows hosts, never in Pyodide
    assert not pinned & {"psutil", "pexpect", "ptyprocess", "colorama", "appnope"}
    ipython = next(ipython_channel.glob("noarch/ipython-9.18.1-*.conda"))
    depends = info_json(ipython, "index.json")["depends"]
    assert "stack_data >=0.6.0" in depends and "prompt-toolkit <3.1.0,>=3.0.41" in depends
    assert not [d for d in depends if d.startswith(("psutil", "pexpect"))]


def test_converted_packages_verify_and_resolve_within_the_channel(ipython_channel):
    packages = sorted(ipython_channel.glob("noarch/*.conda"))
    assert len(packages) >= 12
    for package in packages:
        assert verify_package(package) == [], package.name
    assert unresolved_depends(channel_records(ipython_channel)) == []
    ipython = next(ipython_channel.glob("noarch/ipython-9.18.1-*.conda"))
    link = info_json(ipython, "link.json")
    assert "ipython = IPython:start_ipython" in link["noarch"]["entry_points"]


def test_verify_catches_a_lying_paths_json(tmp_path):
    from lite_env.conda_file import PackageFile, write_conda

    index = {"name": "liar", "version": "1", "build": "0", "subdir": "noarch", "depends": []}
    good = write_conda(tmp_path / "good", index, [PackageFile("a.txt", b"hello")])
    assert verify_package(good) == []
    # rewrite the payload behind paths.json's back: same name, other bytes
    bad_dir = tmp_path / "bad"
    bad = write_conda(bad_dir, index, [PackageFile("a.txt", b"HELLO")])
    with zipfile.ZipFile(good) as g, zipfile.ZipFile(bad) as b:
        members = {n: g.read(n) for n in g.namelist()}
        members["pkg-liar-1-0.tar.zst"] = b.read("pkg-liar-1-0.tar.zst")
    with zipfile.ZipFile(bad, "w") as out:
        for name, data in members.items():
            out.writestr(name, data)
    assert verify_package(bad) == ["a.txt: sha256 or size differs from paths.json"]


def test_conversion_is_byte_for_byte_reproducible(tmp_path):
    wheel = WheelStore(tmp_path / "cache").download(["six==1.17.0"])[0]
    source = read_wheel(WheelStore(tmp_path / "cache").path(wheel))
    first = convert_wheel(source, tmp_path / "a", ["python >=3.10"])
    second = convert_wheel(source, tmp_path / "b", ["python >=3.10"])
    assert first.read_bytes() == second.read_bytes()


def test_names_map_the_same_way_for_packages_and_depends():
    assert conda_name("Stack-Data") == conda_name("stack_data") == "stack_data"
    assert conda_name("prompt_toolkit") == "prompt-toolkit"


def test_a_package_without_a_pure_wheel_needs_a_recipe(lite_env, tmp_path):
    result = lite_env("channel", "add-pypi", "--recipes", tmp_path / "recipes", "psutil")
    assert result.code == 1
    assert "psutil" in result.stderr and "emscripten-wasm32 recipe" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "recipes" / "pypi.yaml").exists()


def test_pip_entries_lock_and_install_without_pypi_afterwards(lite_env, project, tmp_path):
    env = project / "environment.yml"
    env.write_text(env.read_text() + "  - pip:\n    - six==1.17.0\n")
    result = lite_env("lock", env)
    assert result.code == 0, result.stderr
    lock = (project / "environment.lock").read_text()
    assert re.search(
        r"^# pip-wheel: six 1.17.0 six-1.17.0-py2.py3-none-any.whl \w{64}$", lock, re.M
    )
    assert "- conda: ./.lite-env/pypi/noarch/six-1.17.0-" in lock
    # a fresh clone lacks the local channel: it is rebuilt from the locked wheels
    shutil.rmtree(project / ".lite-env")
    result = lite_env("install", "--locked", "-p", tmp_path / "prefix", env)
    assert result.code == 0, result.stderr
    assert (tmp_path / "prefix" / "lib" / "python3.14" / "site-packages" / "six.py").exists()


def test_serving_the_channel_gives_the_same_solution_as_the_folder(
    lite_env, project, small_channel
):
    server = subprocess.Popen(
        [sys.executable, "-m", "lite_env", "channel", "serve", small_channel, "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = re.search(r"http://127\.0\.0\.1:\d+/", server.stderr.readline()).group(0)
        folder = lite_env("solve", "--json", project / "environment.yml")
        (project / "environment.yml").write_text(
            f"channels: [{url}]\ndependencies:\n  - python 3.14.*\n  - comm\n  - tabulate\n"
        )
        served = lite_env("solve", "--json", project / "environment.yml")
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=10)
    assert folder.code == served.code == 0, served.stderr

    def essentials(output: str) -> list[tuple]:
        return [(r["name"], r["version"], r["build"], r["sha256"]) for r in json.loads(output)]

    assert essentials(served.stdout) == essentials(folder.stdout)
    assert all(r["url"].startswith(url) for r in json.loads(served.stdout))
