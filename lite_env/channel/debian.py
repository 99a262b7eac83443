"""Debian's archive as the toolchain uses it: the host's mirror, and apt-get with a private
configuration for packages and sources of other Debian releases."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

from lite_env.channel.host import run
from lite_env.errors import LiteEnvError, log_tail

DEBIAN_SUITES = frozenset(
    "buzz rex bo hamm slink potato woody sarge etch lenny squeeze wheezy jessie stretch buster"
    " bullseye bookworm trixie forky duke sid stable testing unstable oldstable".split()
)
MIRROR_VARIABLE = "LITE_ENV_DEBIAN_MIRROR"


def debian_mirror(etc: Path = Path("/etc/apt")) -> str:
    """The Debian mirror the host's apt uses (or $LITE_ENV_DEBIAN_MIRROR), e.g. `http://…/debian`.

    Read from `etc`'s sources.list and sources.list.d/*.list|*.sources: the first `deb`
    source of a Debian release (security and other archives are skipped).
    """
    if os.environ.get(MIRROR_VARIABLE):
        return os.environ[MIRROR_VARIABLE].rstrip("/")
    files = [etc / "sources.list", *sorted((etc / "sources.list.d").glob("*"))]
    for path in files:
        if not path.is_file() or path.suffix not in (".list", ".sources"):
            continue
        text = path.read_text(errors="replace")
        entries = _deb822_entries(text) if path.suffix == ".sources" else _one_line_entries(text)
        for types, uris, suites in entries:
            if "deb" in types and any(suite in DEBIAN_SUITES for suite in suites):
                return uris[0].rstrip("/")
    raise LiteEnvError(
        f"cannot find a Debian mirror in the host's apt sources ({etc}/sources.list*)",
        hint=f"the emscripten toolchain is built from Debian packages: set {MIRROR_VARIABLE}"
        " to a Debian mirror URL, or build on a Debian host",
    )


class AptArchive:
    """apt-get with a private configuration (sources, lists and downloads in `folder`).

    The host's own sources and package state are never touched: used to download a package
    (`download`) or a source tarball (`source`) from another Debian release than the host's.
    """

    def __init__(self, folder: Path, suites: Sequence[str], *, sources: bool = False) -> None:
        self.folder = folder
        self.suites = tuple(suites)
        self.sources = sources
        self._updated = False

    def options(self) -> list[str]:
        lists, etc = self.folder / "lists", self.folder / "etc"
        return [
            f"-oDir::Etc::SourceList={etc / 'sources.list'}",
            f"-oDir::Etc::SourceParts={etc / 'sources.list.d'}",
            f"-oDir::Etc::Preferences={etc / 'preferences'}",
            f"-oDir::Etc::PreferencesParts={etc / 'preferences.d'}",
            f"-oDir::State::Lists={lists}",
            f"-oDir::State::status={etc / 'status'}",
            f"-oDir::Cache={self.folder / 'cache'}",
            "-oAcquire::Check-Valid-Until=false",
            "-oAcquire::Languages=none",
            "-oAPT::Sandbox::User=root",
            "-oDebug::NoLocking=true",
        ]

    def update(self) -> None:
        """Write the sources list and run `apt-get update` (once per instance)."""
        if self._updated:
            return
        mirror = debian_mirror()
        etc = self.folder / "etc"
        for path in (etc / "sources.list.d", etc / "preferences.d", self.folder / "lists"):
            (path / "partial" if path.name == "lists" else path).mkdir(parents=True, exist_ok=True)
        (self.folder / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
        kind = "deb-src" if self.sources else "deb"
        lines = [f"{kind} {mirror} {suite} main\n" for suite in self.suites]
        (etc / "sources.list").write_text("".join(lines))
        (etc / "status").touch()
        self._run(["update"], what=f"apt-get update for Debian {', '.join(self.suites)}")
        self._updated = True

    def download(self, package: str, folder: Path) -> Path:
        """`apt-get download package` into folder; returns the .deb."""
        self.update()
        before = set(folder.glob("*.deb"))
        self._run(["download", package], cwd=folder, what=f"apt-get download {package}")
        debs = sorted(set(folder.glob("*.deb")) - before)
        if len(debs) != 1:
            raise LiteEnvError(
                f"`apt-get download {package}` wrote {len(debs)} .deb files, not one",
                hint=", ".join(deb.name for deb in debs) or "the mirror may lack the package",
            )
        return debs[0]

    def source(self, package: str, version: str, folder: Path) -> None:
        """`apt-get source --download-only package=version` into folder (.dsc and tarballs)."""
        self.update()
        self._run(
            ["source", "--download-only", f"{package}={version}"],
            cwd=folder,
            what=f"apt-get source {package}={version}",
        )

    def _run(self, arguments: list[str], *, what: str, cwd: Path | None = None) -> None:
        apt_get = shutil.which("apt-get")
        if apt_get is None:
            raise LiteEnvError(
                f"cannot run {what}: apt-get is not installed",
                hint="the emscripten toolchain is built from Debian packages: use a Debian host",
            )
        command = [apt_get, "-q", *self.options(), *arguments]
        done = run(command, what=what, cwd=cwd)
        if done.returncode != 0:
            raise LiteEnvError(
                f"{what} failed", hint=log_tail(done.stdout + done.stderr) or "no output"
            )


def deb_version(deb: Path) -> str:
    """The version in a .deb's file name (`name_version_arch.deb`)."""
    parts = deb.name.removesuffix(".deb").split("_")
    if len(parts) != 3 or not parts[1]:
        raise LiteEnvError(f"{deb.name}: not a Debian package file name (name_version_arch.deb)")
    return parts[1]


def _deb822_entries(text: str) -> Iterator[tuple[list[str], list[str], list[str]]]:
    for paragraph in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in paragraph.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.strip()
        if fields.get("enabled", "yes").lower() == "no":
            continue
        types, uris = fields.get("types", "").split(), fields.get("uris", "").split()
        if uris:
            yield types, uris, fields.get("suites", "").split()


def _one_line_entries(text: str) -> Iterator[tuple[list[str], list[str], list[str]]]:
    for line in text.splitlines():
        words = re.sub(r"\[[^\]]*\]", "", line.split("#", 1)[0]).split()
        if len(words) >= 3:
            yield [words[0]], [words[1]], [words[2]]
