"""Make a memory snapshot of Pyodide with the kernel's modules imported, for an instant start.

A snapshot is the interpreter's memory after the imports, made under node at build time. The
browser restores it instead of booting and importing (seconds of work), then the loader fills
the file system from the image as usual: a snapshot holds memory only.

What is safe in a snapshot is pure-Python state. Modules that hold JavaScript references once
imported cannot be serialized (pyodide_kernel and the ipykernel shim take `pyodide_js`
functions at import, micropip and piplite too), nor can loaded shared libraries. So the
snapshot holds what the kernel imports at start minus those, and anything that seeds itself
at import is frozen: the loader reseeds `random`, while the str hash seed stays the one of the
build. A snapshot is not byte-reproducible (it holds the build's clock readings and libc's
entropy state), unlike the rest of a site.
"""

from __future__ import annotations

import gzip
import hashlib
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lite_env.errors import LiteEnvError
from lite_env.files import write_atomically
from lite_env.pyodide_node import program, run_python

GZIP_LEVEL = 6


@dataclass(frozen=True)
class Snapshot:
    """A gzipped, content-addressed memory snapshot in an image folder."""

    file: str
    sha256: str
    size: int
    raw_size: int
    #: the modules the snapshot holds: those asked for that were imported
    modules: tuple[str, ...]
    #: the modules asked for that failed to import, each with its error
    failed: tuple[str, ...] = ()


def make_snapshot(prefix: Path, out_dir: Path, *, modules: Sequence[str]) -> Snapshot:
    """Import `modules` in the prefix's Pyodide under node and save its memory into out_dir."""
    with tempfile.TemporaryDirectory() as scratch:
        raw_path = Path(scratch) / "snapshot.bin"
        code = program("snapshot_imports", modules=list(modules))
        done = run_python(prefix, code, snapshot=raw_path, timeout=600)
        if done.returncode != 0:
            raise LiteEnvError("cannot make the memory snapshot", hint=done.stderr[-3000:])
        raw = raw_path.read_bytes()
    data = gzip.compress(raw, compresslevel=GZIP_LEVEL, mtime=0)
    digest = hashlib.sha256(data).hexdigest()
    name = f"snapshot-{digest[:16]}.gz"
    out_dir.mkdir(parents=True, exist_ok=True)
    if not (out_dir / name).exists():
        write_atomically(out_dir / name, data)
    lines = done.stdout.splitlines()
    imported = tuple(line.split(" ", 1)[1] for line in lines if line.startswith("imported "))
    failed = tuple(line.split(" ", 1)[1] for line in lines if line.startswith("failed "))
    return Snapshot(name, digest, len(data), len(raw), imported, failed)
