"""Resolve an `EnvSpec` against emscripten-wasm32 + noarch channels with rattler's solver."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlparse

import rattler
from rattler import (
    BuildString,
    Channel,
    Gateway,
    GenericVirtualPackage,
    PackageName,
    RepoDataRecord,
    Version,
)
from rattler.exceptions import FetchRepoDataError, GatewayError, SolverError

from lite_env.errors import LiteEnvError
from lite_env.platform import SUBDIRS, VIRTUAL_PACKAGES
from lite_env.spec import EnvSpec

#: Few concurrent requests: plain static servers (python -m http.server) stall on bursts.
MAX_CONCURRENT_REQUESTS = 4


def record_json(record: RepoDataRecord) -> dict:
    """A solved record as `lite-env solve --json` prints it."""
    return {
        "name": record.name.normalized,
        "version": str(record.version),
        "build": str(record.build),
        "build_number": record.build_number,
        "subdir": str(record.subdir),
        "channel": record.channel,
        "url": record.url,
        "file_name": record.file_name,
        "size": record.size,
        "sha256": record.sha256.hex() if record.sha256 else None,
        "depends": list(record.depends),
    }


def virtual_packages() -> list[GenericVirtualPackage]:
    return [
        GenericVirtualPackage(PackageName(name), Version(version), BuildString(build))
        for name, version, build in VIRTUAL_PACKAGES
    ]


def solve(
    spec: EnvSpec,
    *,
    cache_dir: Path,
    extra_channels: Sequence[str] = (),
    extra_specs: Sequence[str] = (),
    locked: Sequence[RepoDataRecord] = (),
) -> list[RepoDataRecord]:
    """Solve the spec's dependencies and return the records, sorted by name.

    Args:
        spec: the environment to solve.
        cache_dir: lite-env's cache folder (repodata is cached under it).
        extra_channels: channel URLs searched after the spec's (the pip packages' channel).
        extra_specs: MatchSpecs added to the spec's dependencies.
        locked: records to keep if they still fit (an earlier lock), as pixi does.

    Raises LiteEnvError with the solver's explanation when the spec cannot be satisfied.
    """
    _check_local_base_urls([c.url for c in spec.channels])
    channels = [Channel(c.url) for c in spec.channels] + [Channel(url) for url in extra_channels]
    gateway = _gateway(cache_dir)
    try:
        records = asyncio.run(
            _solve(channels, [*spec.dependencies, *extra_specs], gateway, list(locked))
        )
    except SolverError as error:
        raise LiteEnvError(f"{spec.path}: cannot solve the environment", hint=str(error)) from None
    except (FetchRepoDataError, GatewayError) as error:
        raise LiteEnvError(
            f"{spec.path}: cannot read the channels",
            hint=f"{error}\nchannels: " + ", ".join(c.url for c in spec.channels),
        ) from None
    return sorted(records, key=lambda r: r.name.normalized)


def _check_local_base_urls(urls: Sequence[str]) -> None:
    """Refuse a local channel whose repodata gives a base_url that is not a valid URL:
    rattler would panic on it (a hostile HTTP channel's is caught as a panic at the CLI)."""
    for url in urls:
        if not url.startswith("file://"):
            continue
        for subdir in SUBDIRS:
            repodata = Path(unquote(urlparse(url).path), subdir, "repodata.json")
            try:
                info = json.loads(repodata.read_bytes()).get("info") or {}
                base_url = info.get("base_url")
                if base_url is not None:
                    parsed = urlparse(base_url)
                    if parsed.port is not None and not 0 < parsed.port:
                        raise ValueError("port 0")
            except (OSError, ValueError, AttributeError, TypeError) as error:
                if isinstance(error, FileNotFoundError):
                    continue
                raise LiteEnvError(
                    f"{repodata}: not a usable repodata.json", hint=f"base_url: {error}"
                ) from None


def channel_names(spec: EnvSpec, *, cache_dir: Path) -> set[str]:
    """The names of all packages the spec's channels hold for emscripten-wasm32 and noarch."""
    gateway = _gateway(cache_dir)
    channels = [Channel(c.url) for c in spec.channels]
    try:
        result = asyncio.run(gateway.names(channels, list(SUBDIRS)))
    except (FetchRepoDataError, GatewayError) as error:
        raise LiteEnvError(f"{spec.path}: cannot read the channels", hint=str(error)) from None
    return {name.normalized for name in result.names}


def _gateway(cache_dir: Path) -> Gateway:
    return Gateway(
        cache_dir=cache_dir / "repodata", max_concurrent_requests=MAX_CONCURRENT_REQUESTS
    )


async def _solve(channels, specs, gateway, locked) -> list[RepoDataRecord]:
    if locked:
        locked = await _still_published(channels, gateway, locked)
    return await rattler.solve(
        channels,
        specs,
        gateway=gateway,
        platforms=list(SUBDIRS),
        virtual_packages=virtual_packages(),
        locked_packages=locked,
    )


async def _still_published(channels, gateway, locked) -> list[RepoDataRecord]:
    """The locked records whose file the channels still publish with the same sha256: a
    package rebuilt under the same name (a channel rebuilt from its recipes) is solved anew."""
    names = sorted({r.name.normalized for r in locked})
    found = await gateway.query(channels, list(SUBDIRS), names, recursive=False)
    published = {r.url: r.sha256 for records in found for r in records}
    return [r for r in locked if published.get(r.url) == r.sha256]
