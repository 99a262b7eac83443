"""Fetch locked packages into the cache and verify them before anything is unpacked.

Every archive is checked against its record's sha256, then its contents are checked
(lite_env.verify): paths, links, special files, size, paths.json and index.json. Only
then does rattler unpack it, from the local copy. Downloads retry a few times with a pause
and fail with the server's answer; a cached archive that no longer matches is fetched again.
"""

from __future__ import annotations

import json
import stat
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import unquote, urlparse

from rattler import RepoDataRecord

from lite_env.archive import name_problem
from lite_env.errors import LiteEnvError
from lite_env.files import atomic_path, sha256, write_atomically
from lite_env.verify import MAX_UNPACKED_SIZE, crossing_links, package_layout, package_problems

ATTEMPTS = 3
TIMEOUT_S = 60
DOWNLOADS_AT_ONCE = 4
#: Under the archives folder: a file per sha256 whose contents were verified (sha256 is
#: checked on every use, the contents once), holding the package's links and folders.
VERIFIED = "verified"


def fetch_packages(
    records: Sequence[RepoDataRecord],
    *,
    cache_dir: Path,
    on_fetched: Callable[[RepoDataRecord], None] = lambda record: None,
) -> list[RepoDataRecord]:
    """Return the records pointing at verified local archives (file:// URLs).

    Args:
        records: the packages to fetch (their sha256 must be known).
        cache_dir: lite-env's cache folder; downloads go to `cache_dir/archives`.
        on_fetched: called for each package once it is fetched and verified.

    Raises LiteEnvError naming the package and the reason when one cannot be fetched or is
    refused.
    """
    archives = cache_dir / "archives"
    archives.mkdir(parents=True, exist_ok=True)

    def fetch(record: RepoDataRecord) -> RepoDataRecord:
        path = _verified(record, _fetch(record, archives), archives / VERIFIED)
        on_fetched(record)
        return RepoDataRecord(record, record.file_name, path.as_uri(), record.channel or "")

    with ThreadPoolExecutor(DOWNLOADS_AT_ONCE) as pool:
        local = list(pool.map(fetch, records))
    _check_crossing_links(local, archives / VERIFIED)
    return local


def _fetch(record: RepoDataRecord, archives: Path) -> Path:
    name = record.file_name
    if name_problem(name) or "/" in name or not name.endswith((".conda", ".tar.bz2")):
        raise LiteEnvError(
            f"{name!r}: a record's file name must be a plain .conda or .tar.bz2 name; refusing it",
            hint="the lock file or the channel's repodata was edited by hand or is hostile",
        )
    if record.sha256 is None:
        raise LiteEnvError(f"{name}: the channel gives no sha256; refusing it")
    url = urlparse(record.url)
    if url.scheme == "file":
        path = Path(unquote(url.path))
        _check_sha256(record, path, f"{path} was changed after it was locked; refusing it")
        return path
    if url.scheme not in ("http", "https"):
        raise LiteEnvError(f"{name}: cannot fetch from {record.url!r} (not http, https or file)")
    target = archives / record.sha256.hex()[:16] / name  # the name must stay
    target.parent.mkdir(exist_ok=True)
    if target.is_file() and not target.is_symlink():
        if bytes.fromhex(sha256(target)) == record.sha256:
            return target
    # an altered cached copy stays until a verified download replaces it
    with atomic_path(target) as partial:
        _download(record, partial)
        _check_sha256(record, partial, "the channel serves other bytes than it lists")
    return target


def _download(record: RepoDataRecord, partial: Path) -> None:
    """Download the record's archive into `partial`, at most its size (or MAX_UNPACKED_SIZE)."""
    limit = record.size or MAX_UNPACKED_SIZE
    error: Exception | None = None
    for attempt in range(ATTEMPTS):
        try:
            with urllib.request.urlopen(record.url, timeout=TIMEOUT_S) as response:
                with partial.open("wb") as out:
                    while block := response.read(min(1 << 20, limit + 1 - out.tell())):
                        out.write(block)
                        if out.tell() > limit:
                            raise LiteEnvError(
                                f"{record.file_name}: the channel sends more than its"
                                f" {limit:,} bytes; refusing it"
                            )
            return
        except urllib.error.HTTPError as failure:
            error = failure
            if failure.code < 500:
                break  # the server's final answer: no retry
        except (urllib.error.URLError, OSError, ValueError) as failure:
            error = failure
        time.sleep(0.5 * 2**attempt)
    raise LiteEnvError(
        f"cannot fetch {record.file_name} from {record.url}",
        hint=f"{error} (after {attempt + 1} attempt{'s' if attempt else ''})",
    )


def _verified(record: RepoDataRecord, path: Path, verified: Path) -> Path:
    marker = _marker(record, verified)
    if marker.exists():
        return path
    verified.mkdir(exist_ok=True)
    problems = package_problems(path, record=record, scratch=verified)
    if problems:
        raise LiteEnvError(
            f"{record.file_name}: refusing a package that is not sound",
            hint="\n".join(problems[:20]),
        )
    write_atomically(marker, json.dumps(package_layout(path)))
    return path


def verified_members(record: RepoDataRecord, cache_dir: Path) -> dict[str, list]:
    """The members of a package fetched and verified (see package_layout)."""
    return json.loads(_marker(record, cache_dir / "archives" / VERIFIED).read_text())["members"]


def _marker(record: RepoDataRecord, verified: Path) -> Path:
    return verified / f"{record.sha256.hex()}.layout.json"


def _check_crossing_links(records: Sequence[RepoDataRecord], verified: Path) -> None:
    """Refuse an environment where one package's symlink is another package's folder."""
    layouts = {r.file_name: json.loads(_marker(r, verified).read_text()) for r in records}
    python = next((r.version for r in records if r.name.normalized == "python"), None)
    version = ".".join(map(str, python.as_major_minor())) if python else None
    problems = crossing_links(layouts, f"python{version}" if version else None)
    if problems:
        raise LiteEnvError(
            "refusing the environment: a symlink of one package is a folder of another",
            hint="\n".join(problems[:20]),
        )


def _check_sha256(record: RepoDataRecord, path: Path, reason: str) -> None:
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            raise OSError(f"{path} is not a regular file")
        actual = bytes.fromhex(sha256(path))
    except OSError as error:
        raise LiteEnvError(f"cannot read {record.file_name}", hint=str(error)) from None
    if actual != record.sha256:
        raise LiteEnvError(
            f"{record.file_name} does not match its lock: sha256 {actual.hex()},"
            f" expected {record.sha256.hex()}",
            hint=reason,
        )
