"""An environment's `pip:` requirements as noarch conda packages in a project-local channel.

The requirements are resolved for Pyodide (markers evaluated for emscripten) with the channel
builder, through its one door for the pipeline (lite_env.channel.pypi), converted reproducibly
into `.lite-env/pypi/` beside the environment file and then solved together with the conda
dependencies. The lock records the wheels' sha256, so the channel can be rebuilt byte for byte
on another machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from lite_env.channel.pypi import WheelPin, conda_name, conda_spec, resolve, wheel_channel
from lite_env.errors import LiteEnvError
from lite_env.spec import EnvSpec

__all__ = [
    "PIP_CHANNEL",
    "PipPackages",
    "WheelPin",
    "build_pip_channel",
    "check_hashes",
    "conda_name",
    "pip_channel_dir",
    "prepare_pip",
]

PIP_CHANNEL = Path(".lite-env") / "pypi"


@dataclass(frozen=True)
class PipPackages:
    """The local channel holding the converted wheels, and the specs that request them."""

    channel: Path
    specs: tuple[str, ...]
    wheels: tuple[WheelPin, ...]

    @property
    def url(self) -> str:
        return self.channel.as_uri() + "/"


def pip_channel_dir(spec: EnvSpec) -> Path:
    return spec.folder / PIP_CHANNEL


def prepare_pip(
    spec: EnvSpec,
    *,
    cache_dir: Path,
    conda_names: set[str],
    preferred: Sequence[WheelPin] = (),
) -> PipPackages:
    """Resolve the spec's pip requirements for Pyodide and convert them into the local channel.

    Projects that the conda channels provide (`conda_names`) are left to the conda solver.
    """
    wheels = resolve(spec.pip, cache_dir=cache_dir, preferred=preferred, provided=conda_names)
    check_hashes(spec, wheels)
    channel = build_pip_channel(spec, wheels, cache_dir=cache_dir)
    specs = tuple(conda_spec(Requirement(r)) for r in spec.pip)
    return PipPackages(channel, specs, tuple(wheels))


def check_hashes(spec: EnvSpec, wheels: Sequence[WheelPin]) -> None:
    """Raise LiteEnvError unless every wheel has one of its project's `--hash` pins, when
    the spec has any (pip's hash-checking mode: then every wheel needs a pin)."""
    if not spec.pip_hashes:
        return
    pins = dict(spec.pip_hashes)
    by_name = {canonicalize_name(wheel.name): wheel for wheel in wheels}
    for name in pins:
        if name not in by_name:
            raise LiteEnvError(
                f"{spec.path}: {name} has --hash pins, but the conda channel provides it:"
                " its wheel is not used, so its hash cannot be checked",
                hint=f"remove the --hash pins of {name} (the channel's package has its own"
                " sha256 in the lock)",
            )
    for name, wheel in sorted(by_name.items()):
        if name not in pins:
            raise LiteEnvError(
                f"{spec.path}: {wheel.file} (needed by the requirements) has no --hash pin,"
                " and hash-checking mode is on",
                hint=f"add `{name}=={wheel.version} --hash=sha256:{wheel.sha256}` after"
                " checking that file",
            )
        if wheel.sha256 not in pins[name]:
            raise LiteEnvError(
                f"{spec.path}: {wheel.file} has sha256 {wheel.sha256}, which none of the"
                f" --hash pins of {name} allows",
                hint="the file on PyPI is not the one pinned: check it, then update the pin",
            )


def build_pip_channel(spec: EnvSpec, wheels: Sequence[WheelPin], *, cache_dir: Path) -> Path:
    """Fetch the pinned wheels (checking sha256), convert them and index the local channel."""
    return wheel_channel(wheels, pip_channel_dir(spec), cache_dir=cache_dir)
