"""Fetch, verify and install solved records into a prefix laid out as Pyodide sees it."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlparse

from rattler import InstallerReporter, RepoDataRecord, Subdir, install
from rattler.exceptions import InstallerError, LinkError, TransactionError

from lite_env.errors import LiteEnvError
from lite_env.solve import PLATFORM

#: The prefix of the environment inside the browser: Pyodide's sys.prefix.
BROWSER_PREFIX = "/"


def install_prefix(
    records: Sequence[RepoDataRecord],
    prefix: Path,
    *,
    cache_dir: Path,
    reporter: InstallerReporter | None = None,
) -> Path:
    """Install the records into a fresh `prefix` and return it.

    Packages are downloaded into `cache_dir/pkgs` and checked against the records' sha256.
    Link scripts never run (they would run on this machine, not in the browser), and
    prefix placeholders are replaced with the browser's prefix `/`. The prefix is built
    beside its final place and moved there when complete.
    """
    prefix = prefix.absolute()
    verify_local_archives(records)
    staging = prefix.with_name(f".{prefix.name}.part")
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    try:
        asyncio.run(
            install(
                list(records),
                target_prefix=staging,
                cache_dir=cache_dir / "pkgs",
                platform=Subdir(PLATFORM),
                execute_link_scripts=False,
                show_progress=False,
                reporter=reporter,
                alternative_target_prefix=BROWSER_PREFIX,
            )
        )
    except (InstallerError, LinkError, TransactionError, OSError) as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise LiteEnvError("cannot install the environment", hint=str(error)) from None
    (staging / "CACHEDIR.TAG").unlink(missing_ok=True)
    shutil.rmtree(prefix, ignore_errors=True)
    staging.rename(prefix)
    return prefix


def verify_local_archives(records: Sequence[RepoDataRecord]) -> None:
    """Check the sha256 of packages in local (file://) channels against their records.

    rattler checks what it downloads over HTTP, but extracts local archives unchecked.
    """
    for record in records:
        url = urlparse(record.url)
        if url.scheme != "file" or record.sha256 is None:
            continue
        archive = Path(unquote(url.path))
        try:
            with archive.open("rb") as stream:
                actual = hashlib.file_digest(stream, "sha256").digest()
        except OSError as error:
            raise LiteEnvError(f"cannot read {record.file_name}", hint=str(error)) from None
        if actual != record.sha256:
            raise LiteEnvError(
                f"{record.file_name} does not match its lock: sha256 {actual.hex()},"
                f" expected {record.sha256.hex()}",
                hint=f"{archive} was changed after it was locked; refusing to install it",
            )
