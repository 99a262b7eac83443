"""Resolve PyPI requirements for Pyodide (markers evaluated for emscripten); fetch the wheels
(pure ones, or PEP 783 wheels for the runtime's ABI when a project has no pure wheel) and
convert them into a channel.

This module is the pipeline's one door into the channel builder: an environment's `pip:`
section becomes a local channel through `resolve` and `wheel_channel` (lite_env.pip_channel).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name, parse_wheel_filename

from lite_env.channel.index import index_channel
from lite_env.channel.wheel import (
    PYTHON_ABI,
    RUNTIME_TAGS,
    Wheel,
    conda_name,
    conda_spec,
    convert_wheel,
    read_wheel,
)
from lite_env.errors import LiteEnvError
from lite_env.files import sha256, write_atomically
from lite_env.platform import PYODIDE_MARKERS, WHEEL_PLATFORM

PIP_TARGET = [
    "--python-version",
    "3.14",
    "--implementation",
    "py",
    "--abi",
    "none",
    "--platform",
    "any",
]
#: pip's target for wheels compiled for the runtime (PEP 783): the tags of wheel.RUNTIME_TAGS.
PIP_RUNTIME_TARGET = [
    "--python-version",
    "3.14",
    "--implementation",
    "cp",
    "--abi",
    PYTHON_ABI,
    "--abi",
    "abi3",
    "--platform",
    WHEEL_PLATFORM,
]
MAX_ROUNDS = 50


@dataclass(frozen=True)
class WheelPin:
    """One wheel of the channel: which file, and its sha256.

    `inside` names a PyPI requirement whose wheel ships this wheel in its data files
    (the JupyterLite kernel ships its own wheels this way); otherwise it comes from PyPI.
    """

    name: str
    version: str
    file: str
    sha256: str
    inside: str | None = None


def pyodide_requirements(wheel: Wheel, extras: Iterable[str] = ()) -> list[Requirement]:
    """The wheel's requirements that apply in Pyodide, with the given extras requested."""
    active = []
    for requirement in wheel.requires_dist:
        marker = requirement.marker
        if marker is None or any(
            marker.evaluate({**PYODIDE_MARKERS, "extra": extra}) for extra in ("", *extras)
        ):
            active.append(Requirement(str(requirement).split(";")[0]))
    return active


def conda_depends(wheel: Wheel, wheels: Mapping[str, Wheel]) -> list[str]:
    """The wheel's conda depends for Pyodide; `foo[bar]` adds the deps of foo's extra `bar`."""
    depends = set()
    for requirement in pyodide_requirements(wheel):
        depends.add(conda_spec(requirement))
        provider = wheels.get(canonicalize_name(requirement.name))
        if requirement.extras and provider is not None:
            for extra_requirement in pyodide_requirements(provider, requirement.extras):
                if extra_requirement not in pyodide_requirements(provider):
                    depends.add(conda_spec(extra_requirement))
    return sorted(depends)


def resolve(
    requirements: Sequence[str],
    *,
    cache_dir: Path,
    preferred: Sequence[WheelPin] = (),
    find_in: Sequence[str] = (),
    provided: Iterable[str] = (),
) -> list[WheelPin]:
    """Pick one wheel per project for the requirements and their closure, for Pyodide.

    A project's pure wheel is taken; a project without one gets its PEP 783 wheel for the
    runtime's ABI (`cp314-cp314-pyemscripten_2026_0_wasm32` or abi3), if it has one.

    Args:
        requirements: PEP 508 requirements.
        cache_dir: lite-env's cache folder (wheels are kept in `cache_dir/wheels`).
        preferred: earlier pins, kept when they still satisfy every requirement.
        find_in: PyPI requirements of wheels that ship wheels in their data files (such as
            jupyterlite-pyodide-kernel); the wheels found there are used before PyPI's.
        provided: conda names the channel builds from recipes; not looked up on PyPI.

    Raises LiteEnvError when a project has neither (it needs a compiled recipe) or the
    requirements conflict.
    """
    provided = {conda_name(name) for name in provided}
    store = WheelStore(cache_dir)
    bundled = {pin.name: pin for source in find_in for pin in store.bundled(source)}
    preferred_by_name = {pin.name: pin for pin in preferred}
    chosen: dict[str, tuple[WheelPin, Wheel]] = {}
    extras: dict[str, set[str]] = {}  # grows only: extras asked of each project so far
    top = [Requirement(r) for r in requirements]
    for _ in range(MAX_ROUNDS):
        pending = list(top)
        for name, (_, wheel) in chosen.items():
            pending += pyodide_requirements(wheel, extras.get(name, ()))
        wanted: dict[str, SpecifierSet] = {}
        grew = False
        for requirement in pending:
            name = canonicalize_name(requirement.name)
            if conda_name(name) in provided:
                continue
            wanted[name] = wanted.get(name, SpecifierSet()) & requirement.specifier
            grew |= not requirement.extras <= extras.setdefault(name, set())
            extras[name] |= requirement.extras
        chosen = {name: chosen[name] for name in chosen if name in wanted}
        missing = {
            name: specifier
            for name, specifier in wanted.items()
            if name not in chosen
            or not specifier.contains(chosen[name][0].version, prereleases=True)
        }
        if not missing and not grew:
            return sorted((pin for pin, _ in chosen.values()), key=lambda p: p.name)
        from_pypi = []
        for name, specifier in sorted(missing.items()):
            local = bundled.get(name)
            pin = preferred_by_name.get(name)
            if local is not None and specifier.contains(local.version, prereleases=True):
                chosen[name] = (local, read_wheel(store.path(local)))
            elif pin is not None and specifier.contains(pin.version, prereleases=True):
                from_pypi.append(f"{name}=={pin.version}")
            else:
                from_pypi.append(f"{name}{specifier}")
        for pin in store.download(from_pypi):
            chosen[pin.name] = (pin, read_wheel(store.path(pin)))
    raise LiteEnvError(
        "the PyPI requirements did not settle on one version per project",
        hint="pin the projects that keep changing, e.g. `name==version`",
    )


class WheelStore:
    """Wheels on disk under `cache_dir/wheels`, fetched with pip and checked by sha256."""

    def __init__(self, cache_dir: Path) -> None:
        self.folder = cache_dir / "wheels"
        self.folder.mkdir(parents=True, exist_ok=True)

    def path(self, pin: WheelPin) -> Path:
        return self.folder / pin.file

    def download(self, requirements: Sequence[str], compiled: Sequence[str] = ()) -> list[WheelPin]:
        """Download the newest wheel for each requirement (no dependencies): a pure one, or
        for a project without any, one compiled for the runtime (PEP 783); only the latter
        for the `compiled` requirements."""
        pure, compiled = list(requirements), list(compiled)
        with tempfile.TemporaryDirectory(dir=self.folder) as scratch:
            while pure and (missing := _pip_download(pure, Path(scratch), PIP_TARGET)):
                pure.remove(missing)
                compiled.append(missing)
            if compiled and (missing := _pip_download(compiled, Path(scratch), PIP_RUNTIME_TARGET)):
                raise LiteEnvError(
                    f"{missing}: no pure-Python wheel for Python 3.14 and no {WHEEL_PLATFORM}"
                    " wheel on PyPI",
                    hint="a compiled package needs an emscripten-wasm32 recipe in recipes/"
                    f" (lite-env converts pure wheels and {PYTHON_ABI} or abi3 wheels for"
                    f" {WHEEL_PLATFORM}, the runtime's ABI)",
                )
            return [self._keep(path) for path in sorted(Path(scratch).glob("*.whl"))]

    def fetch(self, pins: Sequence[WheelPin]) -> list[Path]:
        """Make sure every pinned wheel is in the store, with its pinned sha256."""
        missing = [p for p in pins if not self._has(p)]
        from_pypi = [p for p in missing if p.inside is None]
        compiled = {p for p in from_pypi if parse_wheel_filename(p.file)[3] & RUNTIME_TAGS}
        if from_pypi:
            self.download(
                [f"{p.name}=={p.version}" for p in from_pypi if p not in compiled],
                [f"{p.name}=={p.version}" for p in compiled],
            )
        for source in sorted({p.inside for p in missing if p.inside is not None}):
            self.bundled(source)
        for pin in pins:
            if not self._has(pin):
                actual = sha256(self.path(pin)) if self.path(pin).exists() else "missing"
                raise LiteEnvError(
                    f"{pin.file}: sha256 {actual} does not match the pin {pin.sha256}",
                    hint="the wheel on the index changed; re-pin it with `channel add-pypi`",
                )
        return [self.path(p) for p in pins]

    def bundled(self, source: str) -> list[WheelPin]:
        """The wheels shipped inside the data files of the wheel for `source`."""
        outer = self.download([source])
        if len(outer) != 1:
            raise LiteEnvError(f"{source}: expected one wheel, pip returned {len(outer)}")
        pins = []
        with zipfile.ZipFile(self.path(outer[0])) as archive:
            for member in archive.namelist():
                path = PurePosixPath(member)
                if path.suffix != ".whl" or ".data" not in member or path.parent.name != "pypi":
                    continue
                target = self.folder / path.name
                write_atomically(target, archive.read(member))
                name, version, _, _ = parse_wheel_filename(path.name)
                pins.append(WheelPin(name, str(version), path.name, sha256(target), source))
        return pins

    def _has(self, pin: WheelPin) -> bool:
        return self.path(pin).exists() and sha256(self.path(pin)) == pin.sha256

    def _keep(self, path: Path) -> WheelPin:
        name, version, _, _ = parse_wheel_filename(path.name)
        target = self.folder / path.name
        shutil.move(path, target)
        return WheelPin(name, str(version), path.name, sha256(target))


def _pip_download(requirements: Sequence[str], folder: Path, target: Sequence[str]) -> str | None:
    """Download a wheel for `target` for each requirement into folder; None when done, else
    the requirement (one of `requirements`) that has no such wheel."""
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        *target, "--disable-pip-version-check", "--quiet", "--dest", str(folder),
        *requirements,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode == 0:
        return None
    failed = next(
        (line.split("requirement", 1)[1].split("(")[0].strip() for line in done.stderr.splitlines()
         if "Could not find a version that satisfies the requirement" in line),
        None,
    )  # fmt: skip
    names = {canonicalize_name(Requirement(r).name): r for r in requirements}
    missing = names.get(canonicalize_name(re.split(r"[^\w.-]", failed)[0])) if failed else None
    if missing:
        return missing
    raise LiteEnvError("pip could not download " + " ".join(requirements), hint=done.stderr[-2000:])


def convert_pinned_wheels(
    pins: Sequence[WheelPin], channel_dir: Path, *, cache_dir: Path
) -> list[Path]:
    """Fetch the pinned wheels (checking their sha256) and convert them into the channel:
    pure ones into noarch/, those compiled for the runtime into emscripten-wasm32/."""
    paths = WheelStore(cache_dir).fetch(pins)
    wheels = {pin.name: read_wheel(path) for pin, path in zip(pins, paths, strict=True)}
    return [
        convert_wheel(wheel, channel_dir / wheel.subdir, conda_depends(wheel, wheels))
        for wheel in wheels.values()
    ]


def wheel_channel(pins: Sequence[WheelPin], channel_dir: Path, *, cache_dir: Path) -> Path:
    """Fetch the pinned wheels (checking sha256), convert them and index the channel folder."""
    convert_pinned_wheels(pins, channel_dir, cache_dir=cache_dir)
    return index_channel(channel_dir)
