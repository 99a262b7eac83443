"""Fetch, verify and install solved records into a prefix laid out as Pyodide sees it."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlparse

from rattler import InstallerReporter, RepoDataRecord, Subdir, install
from rattler.exceptions import InstallerError, LinkError, TransactionError

from lite_env.errors import LiteEnvError
from lite_env.fetch import fetch_packages
from lite_env.files import sha256
from lite_env.platform import PLATFORM
from lite_env.verify import archive_hashes

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

    Packages are fetched and verified first (lite_env.fetch), then unpacked by rattler from
    the local copies into `cache_dir/pkgs` and linked. Link scripts never run (they would
    run on this machine, not in the browser), and prefix placeholders are replaced with the
    browser's prefix `/`. The prefix is built beside its final place and moved there when
    complete.
    """
    prefix = prefix.absolute()
    local = fetch_packages(records, cache_dir=cache_dir)
    for record in local:
        drop_altered_cache_entry(record, cache_dir / "pkgs")
    staging = prefix.with_name(f".{prefix.name}.part")
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    try:
        asyncio.run(
            install(
                local,
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


def drop_altered_cache_entry(record: RepoDataRecord, package_cache: Path) -> None:
    """Remove rattler's unpacked copy of a package if a file in it no longer matches the
    (verified) archive: rattler links from that copy without checking it, and unpacks the
    archive again when the copy is gone."""
    entry = package_cache / record.file_name.removesuffix(".conda").removesuffix(".tar.bz2")
    if not entry.is_dir():
        return
    archive = Path(unquote(urlparse(record.url).path))
    for path, expected in archive_hashes(archive).items():
        file = entry / path
        if file.is_symlink() or not file.is_file() or sha256(file) != expected:
            shutil.rmtree(entry)
            return
