"""Fetch, verify and install solved records into a prefix laid out as Pyodide sees it."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from rattler import InstallerReporter, RepoDataRecord, Subdir, install
from rattler.exceptions import InstallerError, LinkError, TransactionError

from lite_env.errors import LiteEnvError
from lite_env.fetch import fetch_packages, verified_members
from lite_env.platform import PLATFORM
from lite_env.verify import unpacked_problems

#: The prefix of the environment inside the browser: Pyodide's sys.prefix.
BROWSER_PREFIX = "/"
#: Written into conda-meta/ of every prefix lite-env installs: only such a folder (or an
#: empty one) is ever replaced by an install.
PREFIX_MARKER = "lite-env-prefix"


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
    complete. An existing `prefix` is replaced only if it is empty or a prefix lite-env made.
    """
    prefix = prefix.absolute()
    _check_replaceable(prefix)
    local = fetch_packages(records, cache_dir=cache_dir)
    for record in local:
        drop_altered_cache_entry(record, cache_dir / "pkgs", verified_members(record, cache_dir))
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
    (staging / "conda-meta" / PREFIX_MARKER).touch()
    _check_replaceable(prefix)
    shutil.rmtree(prefix, ignore_errors=True)
    staging.rename(prefix)
    return prefix


def _check_replaceable(prefix: Path) -> None:
    """Refuse a `prefix` that exists and is neither an empty folder nor a lite-env prefix."""
    if not prefix.exists() and not prefix.is_symlink():
        return
    if prefix.is_dir() and not prefix.is_symlink():
        if not any(prefix.iterdir()) or (prefix / "conda-meta" / PREFIX_MARKER).is_file():
            return
    raise LiteEnvError(
        f"{prefix}: exists and is not a prefix lite-env installed; refusing to replace it",
        hint="give a new or empty folder, or remove this one yourself",
    )


def drop_altered_cache_entry(
    record: RepoDataRecord, package_cache: Path, members: Mapping[str, Sequence]
) -> None:
    """Remove rattler's unpacked copy of a package unless it is exactly the verified archive
    (its `members`): rattler links from that copy without checking it, and unpacks the
    archive again when the copy is gone."""
    entry = package_cache / record.file_name.removesuffix(".conda").removesuffix(".tar.bz2")
    if entry.is_symlink():
        entry.unlink()
    elif entry.is_dir() and unpacked_problems(entry, members):
        shutil.rmtree(entry)
