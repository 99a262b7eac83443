"""Fixtures: small real conda channels (real .conda files, indexed by rattler) and a CLI runner."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import rattler

from lite_env.conda_file import PackageFile, write_conda
from lite_env.kernel import KERNEL_PLUGIN

TIMESTAMP = 1_764_000_000_000  # fixed, so fixture packages are byte-stable


def conda_package(
    channel: Path,
    name: str,
    version: str,
    *,
    subdir: str = "noarch",
    depends: tuple[str, ...] = (),
    files: dict[str, bytes] | None = None,
    build: str | None = None,
) -> Path:
    """Write one real package into channel/subdir; noarch ones are `noarch: python`."""
    index = {
        "name": name,
        "version": version,
        "build": build or ("pyh0_0" if subdir == "noarch" else "h0_0"),
        "build_number": 0,
        "subdir": subdir,
        "depends": list(depends),
        "timestamp": TIMESTAMP,
        "license": "MIT",
    }
    if subdir == "noarch":
        index["noarch"] = "python"
        index["depends"] = ["python >=3.10", *depends]
    module = name.replace("-", "_")
    files = files or {f"site-packages/{module}/__init__.py": f"VERSION = {version!r}\n".encode()}
    return write_conda(channel / subdir, index, [PackageFile(p, d) for p, d in files.items()])


def index_channel(channel: Path) -> Path:
    for subdir in ("noarch", "emscripten-wasm32"):
        (channel / subdir).mkdir(parents=True, exist_ok=True)
    asyncio.run(rattler.index.index_fs(channel, write_zst=True, write_shards=True, force=True))
    return channel


def runtime_packages(channel: Path) -> None:
    """A stand-in for the Pyodide runtime: python + python_abi + pyodide-abi, as the real one."""
    conda_package(
        channel,
        "python",
        "3.14.2",
        subdir="emscripten-wasm32",
        build="h0_0_pyodide_cp314",
        depends=("python_abi 3.14.* *_cp314", "pyodide-abi 2026.0.*"),
        files={"share/pyodide/VERSION": b"314.0.7\n"},
    )
    conda_package(
        channel,
        "python_abi",
        "3.14",
        subdir="emscripten-wasm32",
        build="8_cp314",
        files={"share/python_abi/README": b"abi\n"},
    )
    conda_package(
        channel,
        "pyodide-abi",
        "2026.0",
        subdir="emscripten-wasm32",
        build="0",
        files={"share/pyodide-abi/README": b"abi\n"},
    )


REPOSITORY = Path(__file__).parents[1]


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the session (downloads happen once), or $LITE_ENV_CACHE_DIR."""
    if os.environ.get("LITE_ENV_CACHE_DIR"):
        return Path(os.environ["LITE_ENV_CACHE_DIR"]).absolute()
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def default_channel(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Path:
    """The repository's channel, built from recipes/ (the runtime and the pinned wheels)."""
    from lite_env.channel.build import build_channel

    channel = tmp_path_factory.mktemp("default") / "channel"
    return build_channel(REPOSITORY / "recipes", channel, cache_dir=cache_dir).channel


@pytest.fixture(scope="session")
def default_environment(default_channel: Path) -> Path:
    """The repository's environment.yml, beside the channel built from recipes/."""
    path = default_channel.parent / "environment.yml"
    shutil.copyfile(REPOSITORY / "environment.yml", path)
    return path


@pytest.fixture
def small_channel(tmp_path: Path) -> Path:
    """A channel with a runtime and a few noarch packages, some in two versions."""
    channel = tmp_path / "channel"
    runtime_packages(channel)
    conda_package(channel, "comm", "0.2.3", depends=("traitlets >=4",))
    conda_package(channel, "traitlets", "5.14.3")
    conda_package(channel, "tabulate", "0.8.10")
    conda_package(channel, "tabulate", "0.9.0")
    conda_package(channel, "attrs", "24.1.0")
    conda_package(channel, "course-tools", "1.0", depends=("tabulate <0.9",))
    return index_channel(channel)


@pytest.fixture
def project(tmp_path: Path, small_channel: Path) -> Path:
    """A course folder: environment.yml naming the channel by a relative path."""
    folder = tmp_path / "course"
    folder.mkdir()
    (folder / "environment.yml").write_text(
        "name: course\nchannels:\n  - ../channel\ndependencies:\n  - python 3.14.*\n"
        "  - comm\n  - tabulate\n"
    )
    return folder


@contextmanager
def served(folder: Path, *, channel: bool = False) -> Iterator[str]:
    """Serve a folder on 127.0.0.1 for the block (as a conda channel, with `channel`); yields
    its base URL (ending in /)."""
    from lite_env.serve import make_server

    server = make_server(folder, port=0, channel=channel)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def runtime_folder(prefix: Path, folder: Path) -> Path:
    """Pyodide's files and the loader side by side, as a site's static/pyodide/ has them."""
    from lite_env.pyodide_node import RUNTIME_DIR
    from lite_env.site import RUNTIME_FILES, write_loader

    folder.mkdir(parents=True)
    for name in RUNTIME_FILES:
        (folder / name).symlink_to(prefix / RUNTIME_DIR / name)
    write_loader(folder)  # a file: node resolves symlinked modules to their target
    return folder


def kernel_settings(site: Path) -> dict:
    """The Pyodide kernel's settings in a built site's jupyter-lite.json."""
    config = json.loads((site / "jupyter-lite.json").read_text())
    return config["jupyter-config-data"]["litePluginSettings"][KERNEL_PLUGIN]


def run_in_site(site: Path, code: str, **overrides):
    """Start a built site's runtime under node as the kernel's worker does, and run code.

    The site is served on 127.0.0.1 for the loader's fetches; the lock file is given as a
    path, since Pyodide reads it from the file system under node. `overrides` replace
    loadPyodideOptions of the site's settings.
    """
    from lite_env.pyodide_node import run_python_with_loader

    settings = kernel_settings(site)
    options = dict(settings["loadPyodideOptions"]) | overrides
    with served(site) as base:
        for key in (
            "liteEnvManifestURL", "liteEnvSnapshotURL", "liteEnvChannelURL", "liteEnvInstalledURL"
        ):  # fmt: skip
            if options.get(key, "").startswith("./"):
                options[key] = base + options[key].removeprefix("./")
        options["lockFileURL"] = str(site / options["lockFileURL"])
        runtime = site / Path(settings["pyodideUrl"]).parent
        return run_python_with_loader(runtime, code, options, timeout=300)


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def lite_env(tmp_path: Path):
    """Run the real `lite-env` command in a fresh process, with a cache inside tmp_path."""
    cache = tmp_path / "cache"

    def run(*args: str, cwd: Path | None = None) -> Result:
        env = {**os.environ, "LITE_ENV_CACHE_DIR": str(cache), "COLUMNS": "200"}
        done = subprocess.run(
            [sys.executable, "-m", "lite_env", *map(str, args)],
            cwd=cwd or tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    return run


_exit_status = 0


def pytest_sessionfinish(session, exitstatus):
    global _exit_status
    _exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    # py-rattler can abort while the interpreter finalizes after async calls made in this
    # process (see DESIGN.md §7): leave with pytest's own exit status once it is reported.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status)
