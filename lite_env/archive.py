"""Read a package archive only when its structure is canonical, so that any reader sees the same.

Python's zipfile and tarfile and rattler's unpacker disagree on archives that are not canonical
(an extra or duplicate zip member, a zip entry hidden between two others, a tar member named
`info/./paths.json`, a global PAX header...). Every such archive is refused here, before its
contents are checked, so that what is checked is what rattler unpacks.
"""

from __future__ import annotations

import struct
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from conda_package_streaming.package_streaming import CondaComponent, stream_conda_component

#: The member types a package may hold: regular files, folders and symbolic links.
MEMBER_TYPES = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE)
#: PAX header keys that only say what a plain header says too; any other key is refused.
PAX_KEYS = frozenset({"path", "linkpath", "size", "mtime", "atime", "ctime", "uid", "gid",
                      "uname", "gname", "mode"})  # fmt: skip
_LOCAL_HEADER = struct.Struct("<4s5H3I2H")
_LOCAL_SIGNATURE = b"PK\x03\x04"
_DATA_DESCRIPTOR_FLAG = 0x08


class ArchiveError(ValueError):
    """An archive whose structure is not canonical; the message says where."""


def name_problem(name: str) -> str | None:
    """Why a path in a package (a member name or a paths.json entry) is not canonical, or None.

    A canonical name is relative, uses `/` only, and has no empty, `.` or `..` component.
    """
    if not isinstance(name, str) or not name:
        return "an empty or missing path"
    if name.startswith("/"):
        return "a path outside the prefix"
    if "\\" in name or "\0" in name:
        return "a backslash or NUL in the path"
    parts = name.split("/")
    if ".." in parts:
        return "a path outside the prefix"
    if "" in parts or "." in parts:
        return "a path that is not canonical (empty or `.` component)"
    return None


def canonical_members(path: Path) -> Iterator[tuple[tarfile.TarFile, tarfile.TarInfo]]:
    """Each tar member of a .conda or .tar.bz2 package, info/ first for a .conda.

    Raises ArchiveError on the first thing that is not canonical: a .conda zip holding anything
    but metadata.json, info-<stem>.tar.zst and pkg-<stem>.tar.zst (once each, with no bytes
    between or hidden under them); a member name that is not canonical or that repeats; a
    member that is not a file, folder or symlink; a PAX header other readers may read
    differently; info/ members outside the info tarball or payload inside it.
    """
    seen: set[str] = set()
    if path.name.endswith(".tar.bz2"):
        for tar, member in stream_conda_component(str(path)):  # one tarball, info/ included
            _check_member(tar, member, seen)
            yield tar, member
        return
    if not path.name.endswith(".conda"):
        raise ArchiveError(f"{path.name}: not a .conda or .tar.bz2 file name")
    stem = path.name.removesuffix(".conda")
    with zipfile.ZipFile(path) as archive:
        _check_zip(archive, path, stem)
        for component in (CondaComponent.info, CondaComponent.pkg):
            in_info = component is CondaComponent.info
            for tar, member in stream_conda_component(str(path), component=component, zf=archive):
                _check_member(tar, member, seen)
                if member.name.startswith("info/") != in_info:
                    raise ArchiveError(f"{member.name}: in the wrong tarball of the .conda")
                yield tar, member


def _check_zip(archive: zipfile.ZipFile, path: Path, stem: str) -> None:
    """The zip holds exactly the three canonical members, back to back from the first byte."""
    names = [info.filename for info in archive.infolist()]
    expected = {"metadata.json", f"info-{stem}.tar.zst", f"pkg-{stem}.tar.zst"}
    if len(names) != len(set(names)) or set(names) != expected:
        raise ArchiveError(
            f"zip members {sorted(names)}; a .conda holds exactly {sorted(expected)}"
        )
    offset = 0
    with path.open("rb") as stream:
        for info in sorted(archive.infolist(), key=lambda i: i.header_offset):
            stream.seek(info.header_offset)
            header = stream.read(_LOCAL_HEADER.size)
            if len(header) != _LOCAL_HEADER.size or info.header_offset != offset:
                raise ArchiveError(f"{info.filename}: bytes before or between zip members")
            fields = _LOCAL_HEADER.unpack(header)
            signature, flags, compressed, name_length, extra_length = (
                fields[0], fields[2], fields[7], fields[9], fields[10],
            )  # fmt: skip
            name = stream.read(name_length)
            if (
                signature != _LOCAL_SIGNATURE
                or flags & _DATA_DESCRIPTOR_FLAG
                or name != info.filename.encode()
                or compressed not in (info.compress_size, 0xFFFFFFFF)
            ):
                raise ArchiveError(f"{info.filename}: its local zip header differs from the index")
            offset = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length
            offset += info.compress_size
    if offset != archive.start_dir:
        raise ArchiveError("bytes between the last zip member and the zip index")


def _check_member(tar: tarfile.TarFile, member: tarfile.TarInfo, seen: set[str]) -> None:
    name = member.name
    problem = name_problem(name)
    if problem:
        raise ArchiveError(f"{name!r}: {problem}")
    if name in seen:
        raise ArchiveError(f"{name}: more than one member of that name")
    seen.add(name)
    if member.type not in MEMBER_TYPES:
        kind = "a hard link" if member.islnk() else "a device, FIFO or other special file"
        raise ArchiveError(f"{name}: {kind} (not allowed in a package)")
    odd = set(member.pax_headers) - PAX_KEYS
    if odd or tar.pax_headers:
        raise ArchiveError(f"{name}: PAX headers {sorted(odd or tar.pax_headers)} are refused")
