"""Precompressed copies of a site's files (`name.gz` beside `name`), which a server sends as
they are to a browser that accepts gzip: `lite-env serve`, nginx's gzip_static, Caddy's
`precompressed`, Apache with a rewrite rule."""

from __future__ import annotations

import gzip
import os
from collections.abc import Collection
from pathlib import Path

#: Content codings a server may send precompressed, in its order of preference, with the
#: suffix of their files. lite-env writes gzip; a `.br` file made by another tool is served too.
ENCODINGS = (("br", ".br"), ("gzip", ".gz"))
#: The files worth compressing: text, WebAssembly, zips of stored members.
SUFFIXES = frozenset(
    {".html", ".js", ".mjs", ".css", ".json", ".svg", ".ico", ".ipynb", ".wasm", ".zip"}
)
#: Smaller files are sent as they are: their headers weigh more than the gain.
MIN_SIZE = 1024
#: A copy is kept only when it weighs at most this share of the file (the standard library
#: zip of deflated members, for one, barely shrinks).
MAX_RATIO = 0.9


def precompress(folder: Path, *, leave_out: Collection[Path] = ()) -> list[Path]:
    """Write `name.gz` beside every file under `folder` that is worth it (see SUFFIXES,
    MIN_SIZE, MAX_RATIO), except under the `leave_out` folders (relative to `folder`);
    return the copies written, sorted.

    The copies are reproducible: gzip level 9, no file name, modification time 0 in the
    gzip header; the file's own modification time on disk (a server's Last-Modified).
    """
    written = []
    for path in sorted(folder.rglob("*")):
        if path.suffix not in SUFFIXES or path.is_symlink() or not path.is_file():
            continue
        if any(path.relative_to(folder).is_relative_to(skipped) for skipped in leave_out):
            continue
        data = path.read_bytes()
        if len(data) < MIN_SIZE:
            continue
        packed = gzip.compress(data, compresslevel=9, mtime=0)
        if len(packed) <= MAX_RATIO * len(data):
            copy = path.with_name(path.name + ".gz")
            copy.write_bytes(packed)
            os.utime(copy, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns))
            written.append(copy)
    return written
