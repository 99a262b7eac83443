"""Write `.conda` packages byte for byte reproducibly: sorted members, fixed times and owners."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lite_env.files import atomic_path

try:
    from compression import zstd
except ImportError:  # Python < 3.14
    from backports import zstd

ZSTD_LEVEL = 10
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class PackageFile:
    """One file of a package's payload: a regular file, or a symlink when `link_target` is set."""

    path: str
    data: bytes = b""
    mode: int = 0o644
    link_target: str | None = None


def write_conda(
    out_dir: Path,
    index: dict,
    files: Iterable[PackageFile],
    *,
    link: dict | None = None,
    about: dict | None = None,
) -> Path:
    """Write `<name>-<version>-<build>.conda` into out_dir and return its path.

    Args:
        out_dir: the folder to write into (created if missing).
        index: the content of info/index.json (name, version, build, subdir, depends...).
        files: the payload, relative to the prefix.
        link: info/link.json (noarch python entry points), if any.
        about: info/about.json, if any.

    info/paths.json and info/files are derived from the payload. The archive's bytes depend
    only on the arguments: members are sorted, times are `index["timestamp"]` (or zero).
    """
    files = sorted(files, key=lambda f: f.path)
    stem = f"{index['name']}-{index['version']}-{index['build']}"
    mtime = int(index.get("timestamp", 0)) // 1000
    info = {
        "info/index.json": _json(index),
        "info/paths.json": _json({"paths": [_paths_entry(f) for f in files], "paths_version": 1}),
        "info/files": "".join(f"{f.path}\n" for f in files).encode(),
    }
    if link is not None:
        info["info/link.json"] = _json(link)
    if about is not None:
        info["info/about.json"] = _json(about)
    info_files = [PackageFile(path, data) for path, data in sorted(info.items())]

    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{stem}.conda"
    with (
        atomic_path(target) as partial,
        zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_STORED) as archive,
    ):
        _write_member(archive, "metadata.json", _json({"conda_pkg_format_version": 2}))
        _write_member(archive, f"pkg-{stem}.tar.zst", _tar_zst(files, mtime))
        _write_member(archive, f"info-{stem}.tar.zst", _tar_zst(info_files, mtime))
    return target


def _json(value: dict) -> bytes:
    return json.dumps(value, indent=2, sort_keys=True).encode() + b"\n"


def _paths_entry(file: PackageFile) -> dict:
    if file.link_target is not None:
        return {"_path": file.path, "path_type": "softlink"}
    return {
        "_path": file.path,
        "path_type": "hardlink",
        "sha256": hashlib.sha256(file.data).hexdigest(),
        "size_in_bytes": len(file.data),
    }


def _tar_zst(files: list[PackageFile], mtime: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for file in files:
            member = tarfile.TarInfo(file.path)
            member.mtime = mtime
            member.mode = file.mode
            if file.link_target is not None:
                member.type = tarfile.SYMTYPE
                member.linkname = file.link_target
                tar.addfile(member)
            else:
                member.size = len(file.data)
                tar.addfile(member, io.BytesIO(file.data))
    return zstd.compress(buffer.getvalue(), level=ZSTD_LEVEL)


def _write_member(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    member = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    member.external_attr = 0o644 << 16
    archive.writestr(member, data)
