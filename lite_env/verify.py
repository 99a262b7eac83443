"""Check channel packages: archive contents against paths.json, names, and resolvable depends.

verify_package also runs in the kernel, in Pyodide, for `%conda install` (the site ships this
module with the base modules it imports): rattler, which Pyodide lacks, is imported only by
the functions that use it.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

from lite_env.archive import ArchiveError, canonical_members, name_problem
from lite_env.errors import LiteEnvError
from lite_env.files import sha256
from lite_env.platform import SUBDIRS

if TYPE_CHECKING:
    from rattler import PackageRecord, RepoDataRecord

#: Names the solver provides itself rather than a package.
VIRTUAL_PREFIX = "__"
#: The most a package may unpack to (bytes): beyond it the archive is taken for a bomb.
MAX_UNPACKED_SIZE = 4 * 1024**3


def verify_package(
    path: Path, *, record: PackageRecord | None = None, max_size: int | None = None
) -> list[str]:
    """The problems found in one .conda or .tar.bz2 package (an empty list when it is sound).

    Checked without unpacking anything to disk: the archive's structure is canonical
    (lite_env.archive: nothing another reader could read differently), member paths stay
    inside the prefix, symlinks resolve inside it even through other links of the package,
    only files, folders and symlinks, at most `max_size` bytes unpacked (default
    MAX_UNPACKED_SIZE: a decompression bomb stops there), paths.json lists exactly the
    payload with canonical paths and the right sha256 and size, link.json's entry points are
    plain names, and index.json names the package as its file name (and `record`, when
    given) does.
    """
    max_size = MAX_UNPACKED_SIZE if max_size is None else max_size
    try:
        members = _listing(path, max_size)
    except _TooLargeError:
        return [f"unpacks to more than {max_size:,} bytes; refused"]
    except ArchiveError as error:
        return [str(error)]
    except (
        OSError,
        EOFError,
        LookupError,
        ValueError,
        tarfile.TarError,
        zipfile.BadZipFile,
    ) as error:
        return [f"not a readable package: {error}"]
    info = {name: members[name][3] for name in _METADATA if len(members.get(name, ())) == 4}
    try:
        index = json.loads(info["info/index.json"])
        paths = json.loads(info["info/paths.json"])["paths"]
        link = json.loads(info.get("info/link.json", b"{}"))
        if not (isinstance(index, dict) and isinstance(paths, list) and isinstance(link, dict)):
            raise TypeError("index.json, paths.json or link.json is not what it should be")
    except (KeyError, ValueError, TypeError) as error:
        return [f"unreadable metadata: {error}"]
    payload = {name: value for name, value in members.items() if not name.startswith("info/")}
    problems = _link_problems(members) + _metadata_problems(index, link)
    stem = f"{index.get('name')}-{index.get('version')}-{index.get('build')}"
    if path.name not in (f"{stem}.conda", f"{stem}.tar.bz2"):
        problems.append(f"index.json says {stem}, the file name does not")
    if record is not None:
        expected = f"{record.name.normalized}-{record.version}-{record.build}"
        if stem != expected:
            problems.append(f"index.json says {stem}, the channel's record says {expected}")
    listed: set[str] = set()
    for entry in paths:
        name = entry.get("_path") if isinstance(entry, dict) else None
        problem = name_problem(name) if isinstance(name, str) else "an entry without _path"
        if problem or name.startswith("info/"):
            problems.append(f"paths.json {name!r}: {problem or 'inside info/'}")
            continue
        if name in listed:
            problems.append(f"paths.json {name}: listed twice")
        listed.add(name)
        actual = payload.get(name)
        kind = entry.get("path_type", "hardlink")
        if actual is None:
            problems.append(f"{name}: listed in paths.json, not in the archive")
        elif (kind, actual[0]) not in _PATH_TYPES:
            problems.append(f"{name}: paths.json says {kind}, the archive has a {actual[0]}")
        elif actual[0] == "file" and actual[1:3] != (
            entry.get("sha256"),
            entry.get("size_in_bytes", 0),
        ):
            problems.append(f"{name}: sha256 or size differs from paths.json")
    files = {name for name, value in payload.items() if value[0] != "dir"}
    problems += [f"{name}: not listed in paths.json" for name in sorted(files - listed)]
    return problems


def package_problems(
    path: Path, *, record: PackageRecord | None = None, scratch: Path
) -> list[str]:
    """The problems of a package as install and `channel verify` check it: verify_package,
    then rattler's own unpacker run on the archive (in a folder under `scratch`, removed)
    and what it wrote compared with what was verified, file by file."""
    from rattler.package_streaming import extract

    problems = verify_package(path, record=record)
    if problems:
        return problems
    unpacked = Path(tempfile.mkdtemp(prefix=".unpacked.", dir=scratch))
    try:
        extract(path, unpacked)
        members = package_layout(path)["members"]
        return [f"unpacked by rattler, {p}" for p in unpacked_problems(unpacked, members)]
    except Exception as error:  # rattler's own errors have no common base
        return [f"rattler cannot unpack it: {error}"]
    finally:
        shutil.rmtree(unpacked, ignore_errors=True)


def unpacked_problems(folder: Path, members: Mapping[str, Sequence]) -> list[str]:
    """How `folder` differs from a verified archive's `members` (package_layout's): every
    file with its sha256, every symlink with its target, no other file, link or folder. An
    empty list when the folder is exactly the archive unpacked; links are never followed."""
    expected = {name: tuple(value) for name, value in members.items()}
    folders = {name for name, value in expected.items() if value[0] == "dir"}
    for name in expected:
        while name := posixpath.dirname(name):
            folders.add(name)
    problems = []
    for root, dirs, names in os.walk(folder):
        for name in dirs + names:
            path = Path(root, name)
            relative = path.relative_to(folder).as_posix()
            if path.is_symlink():
                actual: tuple = ("symlink", os.readlink(path))
            elif path.is_dir():
                expected.pop(relative, None)
                if relative not in folders:
                    problems.append(f"{relative}: a folder the archive does not hold")
                continue
            elif path.is_file():
                actual = ("file", sha256(path))
            else:
                actual = ("special",)
            if expected.pop(relative, None) != actual:
                problems.append(f"{relative}: not as the archive holds it")
    problems += [f"{name}: missing" for name, value in expected.items() if value[0] != "dir"]
    return problems


#: The metadata files read as JSON; they are kept in memory, so each is limited in size.
_METADATA = ("info/index.json", "info/paths.json", "info/link.json")
_MAX_METADATA_SIZE = 256 * 1024**2
#: paths.json's path_type for each kind of archive member.
_PATH_TYPES = {("hardlink", "file"), ("softlink", "symlink"), ("directory", "dir")}
#: A symlink target: `..` only at its start, then names (no `.`, no empty component).
_PLAIN_TARGET = re.compile(r"(\.\./)*(?!\.\.?(/|$))[^/]+(/(?!\.\.?(/|$))[^/]+)*")
#: The most symlinks followed to resolve one path (as Linux's own limit).
_MAX_LINK_DEPTH = 40


class _TooLargeError(Exception):
    pass


def _listing(path: Path, max_size: int) -> dict[str, tuple]:
    """Each member of a canonical archive: ("file", sha256, size[, bytes of metadata]),
    ("symlink", target) or ("dir",). Raises ArchiveError, or _TooLargeError past max_size."""
    members: dict[str, tuple] = {}
    unpacked = 0
    for tar, member in canonical_members(path):
        if member.issym():
            members[member.name] = ("symlink", member.linkname)
        elif member.isdir():
            members[member.name] = ("dir",)
        else:
            unpacked += member.size
            if unpacked > max_size:
                raise _TooLargeError
            stream = tar.extractfile(member)
            if member.name in _METADATA and member.size <= _MAX_METADATA_SIZE:
                data = stream.read()
                members[member.name] = ("file", hashlib.sha256(data).hexdigest(), len(data), data)
            else:
                members[member.name] = ("file", *_digest(stream))
    return members


def _link_problems(members: dict[str, tuple]) -> list[str]:
    """Symlinks that lead outside the prefix, alone or through other links of the package,
    whose target is not plain, and members unpacked through a link (crossing_links does the
    same across the packages of an environment)."""
    links = {name: value[1] for name, value in members.items() if value[0] == "symlink"}
    problems = []
    for name in members:
        parent = posixpath.dirname(name)
        while parent:
            if parent in links:
                problems.append(f"{name}: inside a folder that is a symlink ({parent})")
                break
            parent = posixpath.dirname(parent)
    for name, target in links.items():
        if name.startswith("info/"):
            problems.append(f"{name}: a symlink in info/")
        elif (
            target.startswith("/") or _resolve(f"{posixpath.dirname(name)}/{target}", links) is None
        ):
            problems.append(f"{name}: a symlink pointing outside the prefix ({target})")
        elif not _PLAIN_TARGET.fullmatch(target):
            problems.append(f"{name}: a symlink target that is not plain ({target})")
    return problems


def package_layout(path: Path) -> dict:
    """What later checks need of a verified package, as JSON: its symlinks and the folders
    its paths need (its members' folders, and those a link's target passes through), which
    `crossing_links` compares; and its members (("file", sha256), ("symlink", target) or
    ("dir",) by path), which `unpacked_problems` compares an unpacked copy with."""
    members = _listing(path, MAX_UNPACKED_SIZE)
    paths = [n for n in members if not n.startswith("info/")]
    links = sorted(n for n in paths if members[n][0] == "symlink")
    folders = {n for n in paths if members[n][0] == "dir"}
    paths += [posixpath.normpath(f"{posixpath.dirname(n)}/{members[n][1]}") for n in links]
    for name in paths:
        while name := posixpath.dirname(name):
            folders.add(name)
    return {
        "links": links,
        "folders": sorted(folders),
        "members": {name: value[:2] for name, value in members.items()},
    }


def crossing_links(layouts: dict[str, dict], python: str | None) -> list[str]:
    """Paths that are a symlink in one package and a folder in another (after noarch python
    paths are moved under `python`'s site-packages): a file or link written under such a
    path would go wherever the link points, so links of several packages could chain out
    of the prefix. `layouts` maps a package to its package_layout."""
    moves = {"site-packages": f"lib/{python}/site-packages", "python-scripts": "bin"}

    def installed(path: str) -> str:
        top, _, rest = path.partition("/")
        return f"{moves[top]}/{rest}" if python and top in moves and rest else path

    links = {installed(n): package for package, layout in layouts.items() for n in layout["links"]}
    return [
        f"{folder}: a symlink in {links[installed(folder)]}, a folder in {package}"
        for package, layout in layouts.items()
        for folder in layout["folders"]
        if installed(folder) in links
    ]


def _resolve(path: str, links: dict[str, str], depth: int = 0) -> list[str] | None:
    """The components of `path` with every link of `links` followed, as the kernel would;
    None when it leads above the prefix, is absolute, or follows too many links."""
    if path.startswith("/") or depth > _MAX_LINK_DEPTH:
        return None
    resolved: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not resolved:
                return None
            resolved.pop()
            continue
        resolved.append(part)
        target = links.get("/".join(resolved))
        if target is not None:
            if target.startswith("/"):
                return None
            followed = _resolve("/".join([*resolved[:-1], target]), links, depth + 1)
            if followed is None:
                return None
            resolved = followed
    return resolved


def _metadata_problems(index: dict, link: dict) -> list[str]:
    """index.json and link.json fields that rattler turns into paths, when they are not
    plain relative paths."""
    problems = []
    for key in ("name", "version", "build"):
        if not isinstance(index.get(key), str):
            problems.append(f"index.json: {key} is not a string")
    site_packages = index.get("python_site_packages_path")
    if site_packages is not None and name_problem(site_packages):
        problems.append(f"index.json: python_site_packages_path {site_packages!r} refused")
    noarch = link.get("noarch", {})
    points = noarch.get("entry_points", []) if isinstance(noarch, dict) else None
    if not isinstance(points, list):
        return [*problems, "link.json: entry_points is not a list"]
    for point in points:
        command = point.split("=")[0].strip() if isinstance(point, str) else None
        if not command or "/" in command or name_problem(command):
            problems.append(f"link.json: entry point {point!r} is not a plain name")
    return problems


def unresolved_depends(records: Iterable[PackageRecord]) -> list[str]:
    """Depends of the records that no record satisfies (`package: spec` strings)."""
    from rattler import MatchSpec

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
    from rattler import Channel, RepoData

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
    """Verify every package of a channel folder (.conda and .tar.bz2, with install's check,
    package_problems) and that every dependency resolves in it.

    Returns the number of packages; raises LiteEnvError listing every problem found.
    """
    packages = sorted([*channel_dir.glob("*/*.conda"), *channel_dir.glob("*/*.tar.bz2")])
    with tempfile.TemporaryDirectory() as scratch:
        problems = [
            f"{package.relative_to(channel_dir)}: {problem}"
            for package in packages
            for problem in package_problems(package, scratch=Path(scratch))
        ]
    problems += [f"unresolved {d}" for d in unresolved_depends(channel_records(channel_dir))]
    if problems:
        raise LiteEnvError(f"{channel_dir}: {len(problems)} problems", hint="\n".join(problems))
    return len(packages)
