"""Fetch locked packages into the cache and verify them before anything is unpacked.

Every archive is checked against its record's sha256, then its contents are checked
(lite_env.verify): paths, links, special files, size, paths.json and index.json. Only
then does rattler unpack it, from the local copy. Downloads retry a few times with a pause
and fail with the server's answer; a cached archive that no longer matches is fetched again.
"""

from __future__ import annotations

import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import unquote, urlparse

from rattler import RepoDataRecord

from lite_env.errors import LiteEnvError
from lite_env.files import atomic_path, sha256
from lite_env.verify import verify_package

ATTEMPTS = 3
TIMEOUT_S = 60
DOWNLOADS_AT_ONCE = 4
#: Under the archives folder: a file per sha256 whose contents were verified (sha256 is
#: checked on every use, the contents once).
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
        return list(pool.map(fetch, records))


def _fetch(record: RepoDataRecord, archives: Path) -> Path:
    if record.sha256 is None:
        raise LiteEnvError(f"{record.file_name}: the channel gives no sha256; refusing it")
    url = urlparse(record.url)
    if url.scheme == "file":
        path = Path(unquote(url.path))
        _check_sha256(record, path, f"{path} was changed after it was locked; refusing it")
        return path
    target = archives / record.sha256.hex()[:16] / record.file_name  # the name must stay
    target.parent.mkdir(exist_ok=True)
    if target.exists():
        if bytes.fromhex(sha256(target)) == record.sha256:
            return target
        target.unlink()  # altered in the cache: fetch it again
    _download(record, target)
    _check_sha256(record, target, "the channel serves other bytes than it lists")
    return target


def _download(record: RepoDataRecord, target: Path) -> None:
    error: Exception | None = None
    for attempt in range(ATTEMPTS):
        try:
            with (
                urllib.request.urlopen(record.url, timeout=TIMEOUT_S) as response,
                atomic_path(target) as partial,
                partial.open("wb") as out,
            ):
                shutil.copyfileobj(response, out)
            return
        except urllib.error.HTTPError as failure:
            error = failure
            if failure.code < 500:
                break  # the server's final answer: no retry
        except (urllib.error.URLError, OSError) as failure:
            error = failure
        time.sleep(0.5 * 2**attempt)
    raise LiteEnvError(
        f"cannot fetch {record.file_name} from {record.url}",
        hint=f"{error} (after {attempt + 1} attempt{'s' if attempt else ''})",
    )


def _verified(record: RepoDataRecord, path: Path, verified: Path) -> Path:
    marker = verified / record.sha256.hex()
    if marker.exists():
        return path
    problems = verify_package(path, record=record)
    if problems:
        raise LiteEnvError(
            f"{record.file_name}: refusing a package that is not sound",
            hint="\n".join(problems[:20]),
        )
    verified.mkdir(exist_ok=True)
    marker.touch()
    return path


def _check_sha256(record: RepoDataRecord, path: Path, reason: str) -> None:
    try:
        actual = bytes.fromhex(sha256(path))
    except OSError as error:
        raise LiteEnvError(f"cannot read {record.file_name}", hint=str(error)) from None
    if actual != record.sha256:
        raise LiteEnvError(
            f"{record.file_name} does not match its lock: sha256 {actual.hex()},"
            f" expected {record.sha256.hex()}",
            hint=reason,
        )
