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

from lite_env.channel.pypi import WheelPin, conda_name, conda_spec, resolve, wheel_channel
from lite_env.spec import EnvSpec

__all__ = [
    "PIP_CHANNEL",
    "PipPackages",
    "WheelPin",
    "build_pip_channel",
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
    channel = build_pip_channel(spec, wheels, cache_dir=cache_dir)
    specs = tuple(conda_spec(Requirement(r)) for r in spec.pip)
    return PipPackages(channel, specs, tuple(wheels))


def build_pip_channel(spec: EnvSpec, wheels: Sequence[WheelPin], *, cache_dir: Path) -> Path:
    """Fetch the pinned wheels (checking sha256), convert them and index the local channel."""
    return wheel_channel(wheels, pip_channel_dir(spec), cache_dir=cache_dir)
