"""Check channel packages: archive contents against paths.json, names, and resolvable depends."""

from __future__ import annotations

import hashlib
import json
import posixpath
import tarfile
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO

from conda_package_streaming.package_streaming import CondaComponent, stream_conda_component
from rattler import Channel, MatchSpec, PackageRecord, RepoData, RepoDataRecord

from lite_env.errors import LiteEnvError
from lite_env.platform import SUBDIRS

#: Names the solver provides itself rather than a package.
VIRTUAL_PREFIX = "__"
#: The most a package may unpack to (bytes): beyond it the archive is taken for a bomb.
MAX_UNPACKED_SIZE = 4 * 1024**3


def verify_package(
    path: Path, *, record: PackageRecord | None = None, max_size: int | None = None
) -> list[str]:
    """The problems found in one .conda or .tar.bz2 package (an empty list when it is sound).

    Checked without unpacking anything to disk: member paths stay inside the prefix (no
    absolute paths, no `..`, no link pointing out), only files, folders and symlinks (no
    devices, FIFOs or hard links), at most `max_size` bytes unpacked (default
    MAX_UNPACKED_SIZE: a decompression bomb stops there), every file as paths.json says
    (sha256, size) and listed there, and index.json naming the package as its file name
    (and `record`, when given) does.
    """
    max_size = MAX_UNPACKED_SIZE if max_size is None else max_size
    problems: list[str] = []
    info: dict[str, bytes] = {}
    payload: dict[str, tuple] = {}
    unpacked = 0
    try:
        for tar, member in _members(path):
            name = member.name
            problem = _member_problem(member)
            if problem:
                problems.append(f"{name}: {problem}")
                continue
            if not member.isfile():
                payload[name] = ("symlink", member.linkname) if member.issym() else ("dir",)
                continue
            unpacked += member.size
            if unpacked > max_size:
                return [*problems, f"unpacks to more than {max_size:,} bytes; refused"]
            stream = tar.extractfile(member)
            if name.startswith("info/"):
                info[name] = stream.read()
            else:
                payload[name] = _digest(stream)
    except (
        OSError,
        EOFError,
        LookupError,
        ValueError,
        tarfile.TarError,
        zipfile.BadZipFile,
    ) as error:
        return [*problems, f"not a readable package: {error}"]
    try:
        index = json.loads(info["info/index.json"])
        paths = json.loads(info["info/paths.json"])["paths"]
    except (KeyError, ValueError, TypeError) as error:
        return [*problems, f"unreadable metadata: {error}"]
    stem = f"{index.get('name')}-{index.get('version')}-{index.get('build')}"
    if path.name not in (f"{stem}.conda", f"{stem}.tar.bz2"):
        problems.append(f"index.json says {stem}, the file name does not")
    if record is not None:
        expected = f"{record.name.normalized}-{record.version}-{record.build}"
        if stem != expected:
            problems.append(f"index.json says {stem}, the channel's record says {expected}")
    listed = set()
    for entry in paths:
        listed.add(entry["_path"])
        actual = payload.get(entry["_path"])
        if actual is None:
            problems.append(f"{entry['_path']}: listed in paths.json, not in the archive")
        elif entry.get("path_type") == "softlink" or actual[0] in ("symlink", "dir"):
            continue
        elif actual != (entry.get("sha256"), entry.get("size_in_bytes", 0)):
            problems.append(f"{entry['_path']}: sha256 or size differs from paths.json")
    files = {name for name, value in payload.items() if value[0] != "dir"}
    problems += [f"{name}: not listed in paths.json" for name in sorted(files - listed)]
    return problems


def archive_hashes(path: Path) -> dict[str, str]:
    """The sha256 of each regular file of a package, as its paths.json lists them."""
    for tar, member in _members(path):
        if member.name == "info/paths.json":
            paths = json.loads(tar.extractfile(member).read())["paths"]
            return {e["_path"]: e["sha256"] for e in paths if e.get("sha256")}
    return {}


def _members(path: Path) -> Iterator[tuple[tarfile.TarFile, tarfile.TarInfo]]:
    if path.name.endswith(".tar.bz2"):
        yield from stream_conda_component(str(path))  # one tarball, info/ included
        return
    with zipfile.ZipFile(path) as archive:
        for component in (CondaComponent.info, CondaComponent.pkg):
            yield from stream_conda_component(str(path), component=component, zf=archive)


def _member_problem(member: tarfile.TarInfo) -> str | None:
    """Why a member may not be unpacked into a prefix, or None."""
    parts = PurePosixPath(member.name).parts
    if member.name.startswith("/") or ".." in parts:
        return "a path outside the prefix"
    if member.issym():
        target = posixpath.normpath(posixpath.join(posixpath.dirname(member.name), member.linkname))
        if member.linkname.startswith("/") or target == ".." or target.startswith("../"):
            return f"a symlink pointing outside the prefix ({member.linkname})"
        return None
    if member.islnk():
        return "a hard link (not allowed in a package)"
    if not (member.isfile() or member.isdir()):
        return "a device, FIFO or other special file"
    return None


def unresolved_depends(records: Iterable[PackageRecord]) -> list[str]:
    """Depends of the records that no record satisfies (`package: spec` strings)."""
    records = list(records)
    missing = []
    for record in records:
        for depend in record.depends:
            spec = MatchSpec(depend)
            name = spec.name.normalized if spec.name else ""
            if name.startswith(VIRTUAL_PREFIX):
                continue
            if not any(spec.matches(candidate) for candidate in records):
                missing.append(f"{record.name.normalized}: {depend}")
    return missing


def channel_records(channel_dir: Path) -> list[RepoDataRecord]:
    """The records of every package in the channel's repodata."""
    channel = Channel(channel_dir.absolute().as_uri())
    records = []
    for subdir in SUBDIRS:
        repodata = channel_dir / subdir / "repodata.json"
        if repodata.exists():
            records += RepoData.from_path(repodata).into_repo_data(channel)
    return records


def _digest(stream: IO[bytes]) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    while block := stream.read(1 << 20):
        digest.update(block)
        size += len(block)
    return digest.hexdigest(), size


def verify_channel(channel_dir: Path) -> int:
    """Verify every package of a channel folder and that every dependency resolves in it.

    Returns the number of packages; raises LiteEnvError listing every problem found.
    """
    packages = sorted(channel_dir.glob("*/*.conda"))
    problems = [
        f"{package.relative_to(channel_dir)}: {problem}"
        for package in packages
        for problem in verify_package(package)
    ]
    problems += [f"unresolved {d}" for d in unresolved_depends(channel_records(channel_dir))]
    if problems:
        raise LiteEnvError(f"{channel_dir}: {len(problems)} problems", hint="\n".join(problems))
    return len(packages)
