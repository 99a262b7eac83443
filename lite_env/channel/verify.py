"""Check channel packages: archive contents against paths.json, names, and resolvable depends."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from conda_package_streaming.package_streaming import CondaComponent, stream_conda_component
from rattler import Channel, MatchSpec, PackageRecord, RepoData, RepoDataRecord

from lite_env.solve import SUBDIRS

#: Names the solver provides itself rather than a package.
VIRTUAL_PREFIX = "__"


def verify_package(path: Path) -> list[str]:
    """The problems found in one .conda package (an empty list when it is sound)."""
    problems = []
    info, payload = {}, {}
    for component, store in ((CondaComponent.info, info), (CondaComponent.pkg, payload)):
        for tar, member in stream_conda_component(str(path), component=component):
            name = member.name
            if name.startswith("/") or ".." in PurePosixPath(name).parts:
                problems.append(f"unsafe member path {name!r}")
            elif member.isfile():
                data = tar.extractfile(member).read()
                store[name] = data if component == CondaComponent.info else _digest(data)
            elif member.issym():
                store[name] = ("symlink", member.linkname)
            elif not member.isdir():
                problems.append(f"{name}: unsupported member type")
    try:
        index = json.loads(info["info/index.json"])
        paths = json.loads(info["info/paths.json"])["paths"]
    except (KeyError, ValueError, TypeError) as error:
        return [*problems, f"unreadable metadata: {error}"]
    stem = f"{index.get('name')}-{index.get('version')}-{index.get('build')}"
    if path.name != f"{stem}.conda":
        problems.append(f"file name does not match index.json ({stem})")
    listed = set()
    for entry in paths:
        listed.add(entry["_path"])
        actual = payload.get(entry["_path"])
        if actual is None:
            problems.append(f"{entry['_path']}: listed in paths.json, not in the archive")
        elif entry.get("path_type") == "softlink":
            continue
        elif actual != (entry.get("sha256"), entry.get("size_in_bytes", 0)):
            problems.append(f"{entry['_path']}: sha256 or size differs from paths.json")
    problems += [f"{name}: not listed in paths.json" for name in sorted(set(payload) - listed)]
    return problems


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


def _digest(data: bytes) -> tuple[str, int]:
    return hashlib.sha256(data).hexdigest(), len(data)
