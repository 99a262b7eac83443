"""Files: their sha256, writing them so that a reader never sees half of one (even with several
writers at once), and reading them out of a prefix or from the user without following a link
or waiting on a special file."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from lite_env.archive import name_problem
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


def read_file_out(source: Path) -> bytes:
    """The bytes of a regular file of a prefix; a symlink or special file there is refused.

    Raises LiteEnvError: a read out of a prefix never follows a link, so no host file it
    points at reaches an image or a site (and a FIFO or device never hangs it).
    """
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as error:
        raise LiteEnvError(f"{source}: not read (a symlink, or {error.strerror})") from None
    with os.fdopen(fd, "rb") as stream:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise LiteEnvError(f"{source}: not a regular file; not read")
        return stream.read()


def copy_folder_out(source: Path, target: Path, *, skip: str = "") -> None:
    """Copy a folder out of a prefix (files whose name ends with `skip` left out, if given);
    a symlink or special file anywhere in it is refused (LiteEnvError), never followed."""
    if source.is_symlink():
        raise LiteEnvError(f"{source}: a symlink; not copied")
    for root, dirs, names in os.walk(source):
        for name in dirs:
            if Path(root, name).is_symlink():
                raise LiteEnvError(f"{Path(root, name)}: a symlink; not copied")
        folder = target / Path(root).relative_to(source)
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            if not (skip and name.endswith(skip)):
                (folder / name).write_bytes(read_file_out(Path(root, name)))


def prefix_file(prefix: Path, relative: str) -> Path:
    """prefix/relative, for a path read from the prefix's own metadata (conda-meta/).

    Raises LiteEnvError unless `relative` is a canonical relative path whose folders are
    real folders of the prefix (none of them a symlink): such a path cannot lead outside.
    """
    problem = name_problem(relative)
    parent = prefix
    for part in relative.split("/")[:-1] if not problem else ():
        parent = parent / part
        if parent.is_symlink() or not parent.is_dir():
            problem = f"{parent.relative_to(prefix)} is a symlink or not a folder"
            break
    if problem:
        raise LiteEnvError(
            f"{prefix}: conda-meta/ lists {relative!r} ({problem}); refusing the prefix",
            hint="the prefix was edited by hand or is hostile: install it again",
        )
    return prefix / relative


def read_small_file(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes (an environment or lock file).

    Raises FileNotFoundError when it is missing and LiteEnvError when it is not a regular
    file (a FIFO or /dev/zero is refused without waiting on it) or is larger than `limit`.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as stream:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise LiteEnvError(f"{path}: not a regular file; refusing to read it")
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise LiteEnvError(f"{path}: larger than {limit:,} bytes; refusing to read it")
    return data


def site_path(url: str) -> PurePosixPath:
    """A site-relative URL of a site's settings ("./static/...") as a path inside the site.

    Raises LiteEnvError for an absolute path, a `..` or anything but a plain relative URL:
    settings read from a site are never a way out of it.
    """
    if not isinstance(url, str) or "://" in url or url.startswith("/"):
        raise LiteEnvError(f"the site's settings name {url!r}, not a file of the site")
    path = PurePosixPath(url.split("?")[0].removeprefix("./"))
    if not path.parts or ".." in path.parts or "\\" in url:
        raise LiteEnvError(f"the site's settings name {url!r}, not a file of the site")
    return path
