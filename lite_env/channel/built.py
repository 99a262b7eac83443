"""Built recipe packages kept in the cache, so an unchanged recipe is built once for every channel.

`cache_dir/built/<key>/<subdir>/<file>.conda`: the key is a sha256 of the recipe folder's files
and of the toolchain files that shaped the build (its stamp, the meson cross file and compiler
wrapper), so a changed recipe or toolchain is built again; a package's file name alone does not
change with its build script.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

#: Toolchain files whose content a compiled package depends on (relative to cache_dir).
TOOLCHAIN_FILES = (
    "toolchain/stamp.json",
    "toolchain/meson/meson.json",
    "toolchain/meson/cross.ini",
    "toolchain/meson/side-module.sh",
)


def recipe_key(recipe_dir: Path, *, cache_dir: Path, toolchain: str | None) -> str | None:
    """The cache key of the recipe's packages, or None when its toolchain is not set up yet."""
    digest = hashlib.sha256()
    for path in sorted(p for p in recipe_dir.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(recipe_dir).as_posix()}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    if toolchain is not None:
        for name in TOOLCHAIN_FILES:
            path = cache_dir / name
            if not path.is_file():
                return None
            digest.update(f"{name}\0".encode() + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def restore(key: str, outputs: Sequence[Path], *, cache_dir: Path) -> bool:
    """Copy the recipe's packages from the cache into the channel; False when one is missing
    (then nothing is copied)."""
    cached = [cache_dir / "built" / key / path.parent.name / path.name for path in outputs]
    if not all(path.is_file() for path in cached):
        return False
    for source, target in zip(cached, outputs, strict=True):
        if not target.is_file():
            copy_package(source, target)
    return True


def store(key: str, outputs: Sequence[Path], *, cache_dir: Path) -> None:
    """Keep a copy of the recipe's packages (all in the channel) in the cache."""
    for path in outputs:
        target = cache_dir / "built" / key / path.parent.name / path.name
        if not target.is_file():
            copy_package(path, target)


def copy_package(source: Path, target: Path) -> None:
    """Copy a package file as a 0644 file, atomically, never replacing an existing file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.part")
    shutil.copyfile(source, partial)
    partial.chmod(0o644)
    if target.exists():
        partial.unlink()
    else:
        os.replace(partial, target)
