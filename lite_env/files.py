"""Files: their sha256, and writing them so that a reader never sees half of one, even with
several writers at once."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lite_env.errors import LiteEnvError


def write_atomically(path: Path, data: bytes | str) -> Path:
    """Write `path` through a temporary file beside it, renamed into place.

    Readers see the old content or the new, never a part; each concurrent writer has its own
    temporary file, and the last rename wins. The file gets mode 0644.
    """
    with atomic_path(path) as partial:
        partial.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary file beside `path` for the block to write (a stream, a zip, a copy); it is
    renamed onto `path` (mode 0644) when the block ends, and removed if the block fails."""
    fd, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        yield Path(partial)
        os.chmod(partial, 0o644)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def sha256(path: Path) -> str:
    """The hex sha256 of a file's bytes, read in chunks."""
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def read_json(path: Path, *, what: str, keys: Sequence[str] = ()) -> Any:
    """A JSON file's content, or its value under `keys` (each one level down).

    Raises LiteEnvError naming `what` when the file is missing, unreadable, not JSON, or
    lacks one of the keys.
    """
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LiteEnvError(f"{path}: no {what}") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise LiteEnvError(f"{path}: not a valid {what}", hint=str(error)) from None
    for depth, key in enumerate(keys):
        if not isinstance(value, dict) or key not in value:
            where = "".join(f"[{k!r}]" for k in keys[: depth + 1])
            raise LiteEnvError(
                f"{path}: the {what} has no {where}",
                hint="it was not written by the expected tool, or by another version of it",
            )
        value = value[key]
    return value
