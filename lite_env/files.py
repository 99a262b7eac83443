"""Files: their sha256, and writing them so that a reader never sees half of one, even with
several writers at once."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, data: bytes | str) -> Path:
    """Write `path` through a temporary file beside it, renamed into place.

    Readers see the old content or the new, never a part; each concurrent writer has its own
    temporary file, and the last rename wins. The file gets mode 0644.
    """
    fd, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data.encode() if isinstance(data, str) else data)
        os.chmod(partial, 0o644)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return path


def sha256(path: Path) -> str:
    """The hex sha256 of a file's bytes, read in chunks."""
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()
