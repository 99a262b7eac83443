"""Pack an installed prefix into a preloadable image: one gzip chunk per package, and a manifest.

The image is what the loader writes into Pyodide's file system before the interpreter starts.
Chunks and manifest are content-addressed (their names carry their sha256), so browsers and
CDNs may cache them forever, and a rebuild re-downloads only the packages that changed.
Everything is deterministic: sorted files, no timestamps, gzip with mtime 0.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import NamedTuple

from rattler import MatchSpec, PrefixRecord

from lite_env.errors import LiteEnvError
from lite_env.files import prefix_file, read_file_out, write_atomically
from lite_env.options import BuildOptions

FORMAT = "lite-env-image/1"
#: What an image leaves out by default: things no browser kernel runs or reads.
DEFAULT_EXCLUDE = (
    "bin/**",  # entry points: no shell in a browser
    "python-scripts/**",
    "conda-meta/**",
    "CACHEDIR.TAG",
    "share/pyodide/**",  # the runtime itself is served beside the loader
    "share/jupyter/labextensions/**",  # frontend extensions: the site serves them
    "include/**",
    "share/man/**",
    "share/doc/**",
    "**/tests/**",
    "**/__pycache__/**",  # host bytecode is for another interpreter
    "**/*.a",
    "**/*.c",
    "**/*.h",
    "**/*.pyx",
    "**/*.pxd",
)
#: Marks a dist-info as installed by Pyodide, so its per-cell import hook does not reinstall it.
PYODIDE_SOURCE = ("PYODIDE_SOURCE", b"pyodide")
#: gzip level of the chunks: 6 packs 3.6x faster than 9 for 1 % more bytes (bench/README.md).
GZIP_LEVEL = 6
SITE_PACKAGES_ALIAS = "site-packages/"
#: The chunk that holds the lazy packages' dist-info folders, written at start.
LAZY_METADATA = "lite-env-lazy-metadata"
#: Dist-info files a lazy package's metadata chunk leaves to the package's own chunk.
LATER_METADATA = re.compile(
    r"\.dist-info/(RECORD|licenses/.*|(LICEN[CS]E|COPYING|NOTICE|AUTHORS)[^/]*)$"
)
#: The chunk of the standard library's modules that the start does not import (left out of
#: the runtime's python_stdlib.zip), written on the first import of one of them.
LAZY_STDLIB = "lite-env-lazy-stdlib"
#: Chunks lite-env makes, which are no package of the environment.
GENERATED_CHUNKS = frozenset({LAZY_METADATA, LAZY_STDLIB})
#: A file in site-packages: its top-level name, and the rest of its path.
#: Top-level names that are a package's tests, not a module to import.
TEST_FOLDERS = frozenset({"test", "tests", "testing", "conftest"})
SITE_PACKAGES_FILE = re.compile(r"lib/python3\.\d+/site-packages/([^/]+)(?:/(.+))?")


@dataclass(frozen=True)
class PackRules:
    """Which files go into the image.

    Attributes:
        exclude: glob patterns (relative to the prefix, `**` spans folders) left out.
        keep: patterns kept even when an exclude pattern matches.
        exclude_by_package: extra patterns left out of one package (by conda name).
    """

    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    keep: tuple[str, ...] = ()
    exclude_by_package: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_options(cls, options: BuildOptions) -> PackRules:
        """The default rules, extended by an environment file's `lite-env:` section."""
        return cls(
            exclude=(*DEFAULT_EXCLUDE, *options.exclude),
            keep=options.keep,
            exclude_by_package=dict(options.exclude_by_package),
        )

    def excluded(self, package: str, path: str) -> bool:
        patterns = (*self.exclude, *self.exclude_by_package.get(package, ()))
        return any(_glob(p).fullmatch(path) for p in patterns) and not any(
            _glob(p).fullmatch(path) for p in self.keep
        )


class ChunkFile(NamedTuple):
    """One file of a chunk: its prefix path, where its bytes are in the unpacked chunk, and
    its mode."""

    path: str
    offset: int
    size: int
    mode: int


@dataclass(frozen=True)
class Chunk:
    """One package's files in the image."""

    package: str
    version: str
    build: str
    file: str
    sha256: str
    size: int
    raw_size: int
    files: tuple[ChunkFile, ...]
    symlinks: tuple[tuple[str, str], ...]  # path, target
    dropped: tuple[tuple[str, int], ...]  # path, size
    #: its top-level modules when it is written on their first import; () when it is written
    #: before Python starts
    lazy: tuple[str, ...] = ()

    @property
    def modules(self) -> list[str]:
        """The chunk's importable top-level modules (see top_level_modules)."""
        return top_level_modules(file.path for file in self.files)


@dataclass(frozen=True)
class Image:
    """A packed image: its folder, manifest file name and chunks."""

    folder: Path
    manifest: str
    chunks: tuple[Chunk, ...]

    @property
    def raw_size(self) -> int:
        return sum(c.raw_size for c in self.chunks)

    @property
    def size(self) -> int:
        return sum(c.size for c in self.chunks)

    def explain(self) -> list[tuple[str, int, int, int, int]]:
        """Per chunk: package, files kept, bytes unpacked, files dropped, bytes dropped."""
        return [
            (c.package, len(c.files), c.raw_size, len(c.dropped), sum(s for _, s in c.dropped))
            for c in self.chunks
        ]


def pack(
    prefix: Path,
    out_dir: Path,
    *,
    rules: PackRules | None = None,
    overlay: Path | None = None,
    started: Collection[str] | None = None,
    stdlib: Path | None = None,
) -> Image:
    """Write the image of `prefix` into `out_dir` (created; existing chunks are reused).

    Args:
        prefix: an installed emscripten-wasm32 prefix (with conda-meta/).
        out_dir: the image folder.
        rules: what to leave out (default: DEFAULT_EXCLUDE).
        overlay: a folder of generated files laid over the prefix (bytecode); each file
            joins the chunk of the package that owns its folder.
        started: the modules imported while the kernel starts (traced). When given, a package
            of pure-Python modules in site-packages none of which is among them is marked
            lazy: the loader writes it on the first import of one of its modules instead of
            before Python starts (its dist-info goes into one more chunk, LAZY_METADATA,
            written at start); a package of shared libraries that only lazy packages depend
            on goes with them (see _lazy_libraries). None: every package is eager.
        stdlib: a folder of standard library files left out of the runtime's zip
            (bytecode.compile_bytecode's `lazy_stdlib`), packed as one more chunk,
            LAZY_STDLIB: lazy with its top-level modules when `started` is given.
    """
    rules = rules or PackRules()
    out_dir.mkdir(parents=True, exist_ok=True)
    generated = _overlay_files(overlay)
    chunks, records = [], _records(prefix)
    for record in records:
        name = record.name.normalized
        paths = sorted(str(p) for p in record.files)
        for path in paths:
            prefix_file(prefix, path)  # conda-meta/ is data: nothing outside the prefix
        kept = [p for p in paths if not rules.excluded(name, p)]
        dropped = tuple((p, _size(prefix / p)) for p in paths if p not in set(kept))
        extra = _owned(generated, kept)
        if not kept and not extra:
            continue
        chunk = _write_chunk(prefix, out_dir, record, kept, extra, dropped)
        if started is not None:
            chunk = replace(chunk, lazy=_lazy_modules(chunk, {m.split(".")[0] for m in started}))
        chunks.append(chunk)
    if started is not None:
        chunks = _lazy_libraries(chunks, _dependents(records))
    if stdlib is not None and stdlib.is_dir():
        chunks.append(_stdlib_chunk(stdlib, out_dir, lazy=started is not None))
    metadata = _lazy_metadata(out_dir, [c for c in chunks if c.lazy])
    if metadata is not None:
        chunks.append(metadata)
    manifest = {
        "format": FORMAT,
        "chunks": [_chunk_json(c) for c in chunks],
    }
    data = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    manifest_name = f"image-{hashlib.sha256(data).hexdigest()[:16]}.json"
    _write_once(out_dir / manifest_name, data)
    return Image(out_dir, manifest_name, tuple(chunks))


def read_image(folder: Path, manifest: str) -> Image:
    """Read back an image written by `pack`."""
    document = json.loads((folder / manifest).read_text())
    chunks = tuple(
        Chunk(
            package=c["package"],
            version=c["version"],
            build=c["build"],
            file=c["file"],
            sha256=c["sha256"],
            size=c["size"],
            raw_size=c["raw_size"],
            files=tuple(ChunkFile(*f) for f in c["files"]),
            symlinks=tuple(tuple(s) for s in c["symlinks"]),
            dropped=(),
            lazy=tuple(c.get("lazy", ())),
        )
        for c in document["chunks"]
    )
    return Image(folder, manifest, chunks)


def _records(prefix: Path) -> list[PrefixRecord]:
    metas = sorted((prefix / "conda-meta").glob("*.json"))
    return sorted((PrefixRecord.from_path(m) for m in metas), key=lambda r: r.name.normalized)


def _overlay_files(overlay: Path | None) -> dict[str, Path]:
    if overlay is None or not overlay.exists():
        return {}
    return {
        path.relative_to(overlay).as_posix(): path
        for path in sorted(overlay.rglob("*"))
        if path.is_file()
    }


def _owned(generated: Mapping[str, Path], kept: Iterable[str]) -> dict[str, Path]:
    """The generated files that sit in a folder of the package (bytecode, dist-info marks)."""
    folders = {os.path.dirname(p) for p in kept}
    return {
        path: source
        for path, source in generated.items()
        if os.path.dirname(os.path.dirname(path)) in folders
        and os.path.basename(os.path.dirname(path)) == "__pycache__"
    }


def _write_chunk(
    prefix: Path,
    out_dir: Path,
    record: PrefixRecord,
    kept: Sequence[str],
    extra: Mapping[str, Path],
    dropped: tuple[tuple[str, int], ...],
) -> Chunk:
    entries: dict[str, bytes | str] = {}  # path → bytes, or a symlink's target
    for path in kept:
        source = prefix / path
        entries[path] = os.readlink(source) if source.is_symlink() else read_file_out(source)
    for path, source in extra.items():
        entries[path] = read_file_out(source)
    for folder in sorted({os.path.dirname(p) for p in kept if ".dist-info/" in p}):
        if folder.endswith(".dist-info"):
            entries[f"{folder}/{PYODIDE_SOURCE[0]}"] = PYODIDE_SOURCE[1]
    executable = {p for p in kept if os.access(prefix / p, os.X_OK)}
    return _pack_entries(
        out_dir,
        (record.name.normalized, str(record.version), str(record.build)),
        entries,
        executable,
        dropped,
    )


def _stdlib_chunk(folder: Path, out_dir: Path, *, lazy: bool) -> Chunk:
    """The chunk of the standard library files in `folder` (prefix-relative paths under
    lib-dynload); lazy: written on the first import of one of its top-level modules."""
    entries: dict[str, bytes | str] = {
        path.relative_to(folder).as_posix(): read_file_out(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
    inside = [path.partition("/lib-dynload/")[2] for path in entries]
    if not all(inside):  # checked before anything is written
        raise LiteEnvError(f"{folder}: standard library files outside lib-dynload/")
    chunk = _pack_entries(out_dir, (LAZY_STDLIB, "1", "0"), entries, set(), ())
    if not lazy:
        return chunk
    tops = {path.split("/")[0] for path in inside}
    modules = sorted(
        name for name in (top.removesuffix(".py") for top in tops) if name.isidentifier()
    )
    return replace(chunk, lazy=tuple(modules))


def _lazy_metadata(out_dir: Path, lazy: Sequence[Chunk]) -> Chunk | None:
    """A chunk written at start with the lazy chunks' dist-info folders (also in their own
    chunks), so that metadata lookups and scans (entry points) find every package without
    writing the rest of it. What no lookup reads and weighs most comes with the package:
    RECORD (a list of files not written yet), the license files, and METADATA's description
    (its body, after the headers that versions, requirements and extras are read from)."""
    entries: dict[str, bytes | str] = {}
    for chunk in lazy:
        blob = gzip.decompress((out_dir / chunk.file).read_bytes())
        for path, offset, size, _ in chunk.files:
            if ".dist-info/" in path and not LATER_METADATA.search(path):
                content = blob[offset : offset + size]
                if path.endswith(".dist-info/METADATA"):
                    content = content.split(b"\n\n", 1)[0] + b"\n"
                entries[path] = content
    if not entries:
        return None
    return _pack_entries(out_dir, (LAZY_METADATA, "1", "0"), entries, set(), ())


def _pack_entries(
    out_dir: Path,
    identity: tuple[str, str, str],
    entries: Mapping[str, bytes | str],
    executable: Collection[str],
    dropped: tuple[tuple[str, int], ...],
) -> Chunk:
    """Write `entries` (path → bytes, or a symlink's target) as the chunk of the package
    `identity` (name, version, build)."""
    blob, files, symlinks = bytearray(), [], []
    for path in sorted(entries):
        content = entries[path]
        if isinstance(content, str):
            symlinks.append((path, content))
            continue
        mode = 0o755 if path in executable else 0o644
        files.append(ChunkFile(path, len(blob), len(content), mode))
        blob += content
    compressed = gzip.compress(bytes(blob), compresslevel=GZIP_LEVEL, mtime=0)
    digest = hashlib.sha256(compressed).hexdigest()
    name, version, build = identity
    file_name = f"{name}-{version}-{digest[:16]}.gz"
    _write_once(out_dir / file_name, compressed)
    return Chunk(
        package=name,
        version=version,
        build=build,
        file=file_name,
        sha256=digest,
        size=len(compressed),
        raw_size=len(blob),
        files=tuple(files),
        symlinks=tuple(symlinks),
        dropped=dropped,
    )


def _chunk_json(chunk: Chunk) -> dict:
    return {
        "package": chunk.package,
        "version": chunk.version,
        "build": chunk.build,
        "file": chunk.file,
        "sha256": chunk.sha256,
        "size": chunk.size,
        "raw_size": chunk.raw_size,
        "files": [list(f) for f in chunk.files],
        "symlinks": [list(s) for s in chunk.symlinks],
        "dynlibs": sorted(path for path in _paths(chunk) if is_dynlib(path)),
        "lazy": list(chunk.lazy),
    }


def _lazy_modules(chunk: Chunk, started: Collection[str]) -> tuple[str, ...]:
    """The chunk's top-level modules if it can be written on their first import, else ().

    Only site-packages files qualify (Python modules, extension modules, data): a `.pth` file
    (read as Python starts) or a file elsewhere in the prefix (a shared library in lib/, say)
    makes the chunk eager, as does any of its modules being imported at start.
    """
    modules = set()
    for path in _paths(chunk):
        match = SITE_PACKAGES_FILE.fullmatch(path)
        if match is None or path.endswith(".pth"):
            return ()
        top, rest = match.group(1), match.group(2)
        if top.endswith((".dist-info", ".data")) or top == "__pycache__":
            continue
        if not rest and not top.endswith(".py"):
            return ()  # a data file at the top of site-packages
        modules.add(top.removesuffix(".py") if not rest else top)
    if not modules or modules & set(started):
        return ()
    return tuple(sorted(modules))


def _lazy_libraries(chunks: Sequence[Chunk], dependents: Mapping[str, set[str]]) -> list[Chunk]:
    """The chunks, where a package of shared libraries (no site-packages files, at least one
    shared library) whose dependents in the image are all lazy is made lazy with them: written
    on the first import of one of their modules, before that module's extension modules can
    load it. Repeated until nothing changes, for libraries of libraries. A package of data
    (fonts, certificates), which something may read by its path, stays eager."""
    by_name = {chunk.package: chunk for chunk in chunks}
    changed = True
    while changed:
        changed = False
        for name, chunk in by_name.items():
            users = [by_name[user] for user in dependents.get(name, ()) if user in by_name]
            if chunk.lazy or not users or not all(user.lazy for user in users):
                continue
            paths = _paths(chunk)
            python = any(SITE_PACKAGES_FILE.fullmatch(path) for path in paths)
            if python or not any(is_dynlib(path) for path in paths):
                continue
            lazy = sorted({module for user in users for module in user.lazy})
            by_name[name] = replace(chunk, lazy=tuple(lazy))
            changed = True
    return [by_name[chunk.package] for chunk in chunks]


def _dependents(records: Sequence[PrefixRecord]) -> dict[str, set[str]]:
    """Package name → the names of the installed packages that depend on it."""
    users: dict[str, set[str]] = {}
    for record in records:
        for spec in record.depends:
            name = MatchSpec(spec).name.normalized
            users.setdefault(name, set()).add(record.name.normalized)
    return users


def _paths(chunk: Chunk) -> list[str]:
    """The paths of a chunk's files and symlinks."""
    return [file.path for file in chunk.files] + [path for path, _ in chunk.symlinks]


def top_level_modules(paths: Iterable[str]) -> list[str]:
    """The importable top-level modules among prefix paths, sorted: site-packages' packages
    (folders with an `__init__.py`), `.py` modules and extension modules. Private names,
    dist-info folders and test folders do not count."""
    names = set()
    for path in paths:
        match = SITE_PACKAGES_FILE.fullmatch(path)
        if match is None:
            continue
        top, rest = match.group(1), match.group(2)
        if rest == "__init__.py" or not rest and top.endswith(".py"):
            names.add(top.removesuffix(".py"))
        elif not rest and is_dynlib(top):
            names.add(top.split(".")[0])
    return sorted(
        n for n in names if n.isidentifier() and not n.startswith("_") and n not in TEST_FOLDERS
    )


def is_dynlib(path: str) -> bool:
    """Whether the path names a shared library (`x.so`, `libx.so.1.2`)."""
    return bool(re.search(r"\.so(\.\d+)*$", path))


def _write_once(path: Path, data: bytes) -> None:
    """Content-addressed files never change: keep one that exists, else write atomically."""
    if path.exists():
        return
    write_atomically(path, data)


def _size(path: Path) -> int:
    return 0 if path.is_symlink() or not path.exists() else path.stat().st_size


@cache
def _glob(pattern: str) -> re.Pattern:
    """A glob where `*` stays within a folder, `**` spans folders and a leading
    `site-packages/` stands for the interpreter's site-packages."""
    regex, i = "", 0
    if pattern.startswith(SITE_PACKAGES_ALIAS):
        regex, i = r"lib/python3\.\d+/site-packages/", len(SITE_PACKAGES_ALIAS)
    while i < len(pattern):
        if pattern.startswith("**/", i):
            regex, i = regex + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            regex, i = regex + ".*", i + 2
        elif pattern[i] == "*":
            regex, i = regex + "[^/]*", i + 1
        elif pattern[i] == "?":
            regex, i = regex + "[^/]", i + 1
        else:
            regex, i = regex + re.escape(pattern[i]), i + 1
    return re.compile(regex)
