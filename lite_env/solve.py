"""Resolve an `EnvSpec` against emscripten-wasm32 + noarch channels with rattler's solver."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

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
from lite_env.spec import EnvSpec

PLATFORM = "emscripten-wasm32"
SUBDIRS = (PLATFORM, "noarch")
#: The runtime's Python and binary ABI: Pyodide 314.0.7 is CPython 3.14 and its
#: pyodide-lock.json says `abi_version: 2026_0`. Compiled packages, and wheels from PyPI
#: (PEP 783), load only when built for exactly these.
PYTHON_VERSION = (3, 14)
PYODIDE_ABI = "2026_0"
#: The platform tag of PEP 783 wheels built for the runtime's ABI.
WHEEL_PLATFORM = f"pyemscripten_{PYODIDE_ABI}_wasm32"
#: Emscripten is a unix; the browser has no libc or CPU features to describe.
VIRTUAL_PACKAGES = (("__unix", "0", "0"),)
#: Few concurrent requests: plain static servers (python -m http.server) stall on bursts.
MAX_CONCURRENT_REQUESTS = 4


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
