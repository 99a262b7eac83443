"""Write a `pyodide-lock.json` listing the environment's packages, for Pyodide and micropip.

In image mode every entry names the package's image chunk: the image installs the packages
before Python starts and their dist-info says PYODIDE_SOURCE, so Pyodide counts them as
loaded and never fetches a chunk itself. In lock mode (no loader) each package also gets a
zip of its site-packages files, and its shared libraries one of their own for /usr/lib, which
Pyodide's own loader installs: files elsewhere in the prefix are left out.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import zipfile
from pathlib import Path

from packaging.utils import canonicalize_name

from lite_env.files import read_json, sha256
from lite_env.options import Mode
from lite_env.pack import GENERATED_CHUNKS, Chunk, Image

ZIP_DATE = (1980, 1, 1, 0, 0, 0)
SITE_PACKAGES_PARTS = 3  # lib/python3.X/site-packages/


def write_pyodide_lock(
    image: Image,
    runtime_lock: Path,
    out_dir: Path,
    *,
    depends: dict[str, list[str]],
    mode: Mode,
    name: str = "pyodide-lock.json",
) -> Path:
    """Write out_dir/`name` (and, in lock mode, the archives it names).

    Args:
        image: the packed environment.
        runtime_lock: the runtime's own pyodide-lock.json (its `info` is kept: the ABI).
        out_dir: the folder the lock's file names are relative to.
        depends: each package's dependencies by name (packages of the image only).
        mode: "image" or "lock" (see the module's docstring).
        name: the lock's file name (each environment of a site has its own).
    """
    info = read_json(runtime_lock, what="runtime's pyodide-lock.json", keys=("info",))
    packages = {}
    names = {c.package for c in image.chunks}
    for chunk in image.chunks:
        if chunk.package in GENERATED_CHUNKS:
            continue  # the lazy packages' dist-info, the lazy standard library: no package
        key = canonicalize_name(chunk.package)  # Pyodide looks names up normalized
        entry_depends = sorted(
            canonicalize_name(d) for d in depends.get(chunk.package, []) if d in names
        )
        if mode == "image":
            packages[key] = _entry(chunk, chunk.file, chunk.sha256, entry_depends, "site")
            continue
        blob = gzip.decompress((image.folder / chunk.file).read_bytes())
        libraries = [f for f in chunk.files if _is_library(f.path)]
        by_path = {f.path: f for f in libraries}
        for link, target in chunk.symlinks:  # Pyodide's loader keeps no symlinks: copy
            resolved = by_path.get(f"lib/{target}")
            if _is_library(link) and resolved:
                libraries.append(resolved._replace(path=link))
        if libraries:
            name = f"{key}-libs"
            archive = _zip(out_dir, name, chunk.version, blob, libraries, strip=1)
            # a library links its dependencies' libraries (libfreetype.so needs libpng16.so)
            needed = [f"{d}-libs" for d in entry_depends]
            packages[name] = _entry(chunk, archive.name, sha256(archive), needed, "dynlib", name)
            packages[name]["package_type"] = "shared_library"
            entry_depends.append(name)
        site_files = [f for f in chunk.files if _in_site_packages(f.path)]
        if site_files:
            archive = _zip(
                out_dir, chunk.package, chunk.version, blob, site_files, SITE_PACKAGES_PARTS
            )
            packages[key] = _entry(chunk, archive.name, sha256(archive), entry_depends, "site")
    # in lock mode a package may have become only its `-libs` archive (a C library), or
    # nothing at all (the runtime's marker packages): dependencies follow
    for entry in packages.values():
        wanted = {d if d in packages else f"{d}-libs" for d in entry["depends"]}
        entry["depends"] = sorted(wanted & packages.keys())
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    document = {"info": info, "packages": dict(sorted(packages.items()))}
    path.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    return path


def _entry(
    chunk: Chunk,
    file_name: str,
    sha256: str,
    depends: list[str],
    install_dir: str,
    name: str | None = None,
) -> dict:
    return {
        "name": name or canonicalize_name(chunk.package),
        "version": chunk.version,
        "file_name": file_name,
        "install_dir": install_dir,
        "sha256": sha256,
        "package_type": "package",
        "imports": chunk.modules if install_dir == "site" else [],
        "depends": depends,
        "unvendored_tests": False,
    }


def _zip(out_dir, name, version, blob, files, strip: int) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(b"".join(blob[f.offset : f.offset + f.size] for f in files)).hexdigest()
    path = out_dir / f"{name}-{version}-{digest[:16]}.zip"
    if not path.exists():
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for file_path, offset, size, mode in files:
                member = zipfile.ZipInfo("/".join(file_path.split("/")[strip:]), ZIP_DATE)
                member.external_attr = mode << 16
                member.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(member, blob[offset : offset + size])
    return path


def _in_site_packages(path: str) -> bool:
    parts = path.split("/")
    return len(parts) > SITE_PACKAGES_PARTS and parts[0] == "lib" and parts[2] == "site-packages"


def _is_library(path: str) -> bool:
    parts = path.split("/")
    return len(parts) == 2 and parts[0] == "lib" and ".so" in parts[1]
