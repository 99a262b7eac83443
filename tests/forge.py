"""Hostile packages written by hand, as an attacker would, and canaries to see what they reach."""

from __future__ import annotations

import bz2
import hashlib
import io
import json
import os
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

try:
    from compression import zstd
except ImportError:
    from backports import zstd

Member = tuple[tarfile.TarInfo, bytes]


def member(name: str, data: bytes = b"", **fields) -> Member:
    """A tar member: a file by default; `type=tarfile.SYMTYPE, linkname=...` for a link."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in fields.items():
        setattr(info, key, value)
    return info, data


def link(name: str, target: str) -> Member:
    return member(name, type=tarfile.SYMTYPE, linkname=target)


def paths_json(payload: list[Member]) -> list[dict]:
    """What an honest paths.json says of the payload."""
    entries = []
    for info, data in payload:
        if info.issym():
            entries.append({"_path": info.name, "path_type": "softlink"})
        elif info.isfile():
            entries.append({"_path": info.name, "path_type": "hardlink",
                            "sha256": hashlib.sha256(data).hexdigest(),
                            "size_in_bytes": len(data)})  # fmt: skip
    return entries


def info_members(
    name: str,
    payload: list[Member],
    *,
    paths: list | dict | str | None = None,
    index: object = None,
    extra: list[Member] = (),
) -> list[Member]:
    """info/index.json and info/paths.json (honest unless given), then `extra` members."""
    if index is None:
        index = {"name": name, "version": "1.0", "build": "0", "build_number": 0,
                 "subdir": "noarch", "depends": []}  # fmt: skip
    document = {"paths": paths_json(payload) if paths is None else paths, "paths_version": 1}
    if isinstance(paths, str):
        document = paths  # a paths.json that is a bare string
    return [
        member("info/index.json", json.dumps(index).encode()),
        member("info/paths.json", json.dumps(document).encode()),
        *extra,
    ]


def tar_bytes(members: list[Member], *, global_pax: dict | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(
        fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT, pax_headers=global_pax
    ) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return buffer.getvalue()


def write_conda(
    folder: Path,
    name: str,
    payload: list[Member],
    *,
    info: list[Member] | None = None,
    zip_members: Callable[[str, list], list[tuple[str, bytes]]] | None = None,
) -> Path:
    """A .conda: metadata.json, info-<stem>.tar.zst, pkg-<stem>.tar.zst, or whatever
    `zip_members(stem, those three)` returns (names and bytes, in order, duplicates allowed)."""
    stem = f"{name}-1.0-0"
    info = info_members(name, payload) if info is None else info
    members = [
        ("metadata.json", b'{"conda_pkg_format_version": 2}'),
        (f"info-{stem}.tar.zst", zstd.compress(tar_bytes(info))),
        (f"pkg-{stem}.tar.zst", zstd.compress(tar_bytes(payload))),
    ]
    if zip_members is not None:
        members = zip_members(stem, members)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.conda"
    with zipfile.ZipFile(path, "w") as archive:
        for member_name, data in members:
            archive.writestr(zipfile.ZipInfo(member_name, (2020, 1, 1, 0, 0, 0)), data)
    return path


def write_tar_bz2(
    folder: Path, name: str, payload: list[Member], *, info: list[Member] | None = None
) -> Path:
    """A .tar.bz2: one tarball, info/ first, then the payload in the order given."""
    info = info_members(name, payload) if info is None else info
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-1.0-0.tar.bz2"
    path.write_bytes(bz2.compress(tar_bytes([*info, *payload])))
    return path


def hide_zip_member(path: Path, hidden: str) -> None:
    """Drop a member from the zip's index (the central directory) but leave its bytes and
    local header in place: a reader that streams local headers still finds it."""
    with zipfile.ZipFile(path, "a") as archive:
        entry = archive.getinfo(hidden)
        archive.filelist.remove(entry)
        del archive.NameToInfo[hidden]
        archive._didModify = True


def tree_state(root: Path, *, skip: tuple[str, ...] = ()) -> dict[str, tuple]:
    """Every path under root (links not followed) with its type, size, mtime and sha256:
    compared before and after an attack, it shows anything created, changed or deleted."""
    state = {}
    for folder, dirs, names in os.walk(root):
        relative = Path(folder).relative_to(root)
        dirs[:] = [d for d in dirs if (relative / d).as_posix() not in skip]
        for name in dirs + names:
            path = Path(folder, name)
            key = (relative / name).as_posix()
            if path.is_symlink():
                state[key] = ("link", os.readlink(path))
            elif path.is_file():
                stat = path.stat()
                state[key] = ("file", stat.st_size, stat.st_mtime_ns,
                              hashlib.sha256(path.read_bytes()).hexdigest())  # fmt: skip
            else:
                state[key] = ("dir",)
    return state


def plant_canaries(root: Path) -> dict[str, bytes]:
    """Files an attack may aim at: a secret, and archives named as the package cache names
    them, beside and above the places lite-env writes to."""
    canaries = {
        "host/secret.txt": b"SECRET-CANARY\n",
        "host/victim-1.0-0.conda": b"not a package\n",
        "host/victim-1.0-0.tar.bz2": b"not a package\n",
        "victim-1.0-0.conda": b"not a package\n",
        "etc/passwd": b"root:SECRET-CANARY\n",
    }
    for relative, data in canaries.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)
    return canaries


def holds_secret(folder: Path) -> list[str]:
    """Files under folder (links not followed) whose bytes contain the canary secret."""
    found = []
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink() and b"SECRET-CANARY" in path.read_bytes():
            found.append(str(path))
    return found
