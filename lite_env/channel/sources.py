"""A recipe's pinned source files: fetched with the registries' own clients, checked by sha256."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from lite_env.errors import LiteEnvError, log_tail
from lite_env.files import sha256

#: Seconds `npm pack` may take.
NPM_TIMEOUT = 600
#: Seconds `pip download` may take.
PIP_TIMEOUT = 600


@dataclass(frozen=True)
class NpmSource:
    """A source file a recipe takes from npm: `npm pack <spec>` writes `file` (sha256 pinned)."""

    spec: str
    file: str
    sha256: str


@dataclass(frozen=True)
class PypiSource:
    """A source file from PyPI: `pip download --no-binary NAME --no-deps <spec>` writes `file`.

    `backend` (the sdist's build-backend module, e.g. `mesonpy`) has pip read the metadata
    from the sdist's PKG-INFO instead of running that backend (lite_env.channel.pkginfo_backend).
    """

    spec: str
    file: str
    sha256: str
    backend: str | None = None


@dataclass(frozen=True)
class DebianSource:
    """A file of a Debian source package (`apt-get source --download-only package=version`)."""

    package: str
    version: str
    file: str
    sha256: str


@dataclass(frozen=True)
class DebianPackage:
    """A binary package of Debian unstable (`apt-get download package=version`): a `.deb`."""

    package: str
    version: str
    file: str
    sha256: str


Source = NpmSource | PypiSource | DebianSource | DebianPackage


def fetch_npm_source(source: NpmSource, *, cache_dir: Path) -> Path:
    """Return `cache_dir/npm/<file>`, running `npm pack` unless it is there with the pinned sha256.

    Raises LiteEnvError when npm is missing, `npm pack` fails or the sha256 does not match.
    """

    def download(scratch: Path) -> Path:
        npm = shutil.which("npm")
        if npm is None:
            raise LiteEnvError(
                f"cannot fetch {source.spec}: npm is not installed",
                hint="install Node.js and npm (e.g. `apt-get install nodejs npm`), then try again",
            )
        return _client_download(
            [npm, "pack", source.spec, "--ignore-scripts", "--pack-destination", str(scratch)],
            scratch / source.file,
            shown=f"npm pack {source.spec}",
            cwd=str(scratch),
            timeout=NPM_TIMEOUT,
            settings="npm's registry and proxy settings (`npm config list`)",
        )

    what = f"{source.spec}: {source.file}"
    return pinned_file(cache_dir / "npm", source, what, "the npm registry", download)


def fetch_pypi_source(source: PypiSource, *, cache_dir: Path) -> Path:
    """Return `cache_dir/sdists/<file>`, downloading the sdist with pip unless it is there.

    Only the named project is taken as source (`--no-binary NAME`): pip still prepares its
    metadata, and the build tools it installs for that come as wheels; with `source.backend`,
    a stand-in of that backend reads it from PKG-INFO instead. Raises LiteEnvError when pip
    fails or the sha256 does not match the recipe's pin.
    """
    name = re.split(r"[=<>!~\[; ]", source.spec, maxsplit=1)[0]

    def download(scratch: Path) -> Path:
        command = [
            sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps",
            "--no-binary", name, "--dest", str(scratch), source.spec,
        ]  # fmt: skip
        env = None
        if source.backend:
            stand_in = scratch / "backend"
            stand_in.mkdir()
            module = resources.files("lite_env.channel").joinpath("pkginfo_backend.py")
            (stand_in / f"{source.backend}.py").write_text(module.read_text())
            command.insert(command.index("--no-deps"), "--no-build-isolation")
            env = {**os.environ, "PYTHONPATH": str(stand_in)}
        return _client_download(
            command,
            scratch / source.file,
            shown=f"pip download --no-binary {name} {source.spec}",
            timeout=PIP_TIMEOUT,
            settings="pip's index and proxy settings (`pip config list`)",
            env=env,
        )

    what = f"{source.spec}: {source.file}"
    return pinned_file(cache_dir / "sdists", source, what, "PyPI", download)


def pinned_file(
    folder: Path, source: Source, what: str, origin: str, download: Callable[[Path], Path]
) -> Path:
    """Return `folder/<source.file>` when it is there with the pinned sha256; otherwise
    `download` fetches it into a scratch folder beside, and it is checked and moved in."""
    target = folder / source.file
    if target.is_file() and sha256(target) == source.sha256:
        return target
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=folder) as scratch:
        downloaded = download(Path(scratch))
        _check_pin(downloaded, source.sha256, what, origin)
        os.replace(downloaded, target)
    return target


def _client_download(
    command: list[str],
    expected: Path,
    *,
    shown: str,
    timeout: float,
    settings: str,
    cwd: str | None = None,
    env: dict[str, str] | None = None,
) -> Path:
    """Run a registry client (npm, pip) that downloads into a scratch folder and return the
    file it was asked for; LiteEnvError, naming the command as `shown`, when it times out,
    fails or writes another file."""
    try:
        done = subprocess.run(
            command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise LiteEnvError(
            f"`{shown}` did not finish within {timeout} s", hint=f"check {settings}"
        ) from None
    if done.returncode != 0 or not expected.is_file():
        raise LiteEnvError(
            f"`{shown}` failed to write {expected.name}",
            hint=log_tail(done.stderr + done.stdout) or f"it exited with {done.returncode}",
        )
    return expected


def _check_pin(path: Path, pinned: str, what: str, origin: str) -> None:
    actual = sha256(path)
    if actual != pinned:
        raise LiteEnvError(
            f"{what} has sha256 {actual}, the recipe pins {pinned}",
            hint=f"{origin} (or its mirror) served other bytes: check the client's settings,"
            " or update the pin in the recipe if the change is expected",
        )
