"""The typed environment spec that every input form (environment.yml, a pixi manifest,
requirements.txt) is read into, and the checks the readers share."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from packaging.requirements import InvalidRequirement, Requirement
from rattler import MatchSpec

from lite_env.errors import LiteEnvError
from lite_env.files import read_small_file
from lite_env.options import BYTECODE_MODES, BuildOptions
from lite_env.platform import PYODIDE_MARKERS

#: The largest environment file read (bytes).
MAX_FILE_SIZE = 1024**2
#: lite-env's own options (see BuildOptions): `lite-env:` in environment.yml,
#: `[tool.lite-env]` in a pixi manifest.
OWN_KEY = "lite-env"
#: The keys of lite-env's own options.
OPTIONS = (
    "bytecode",
    "preload",
    "exclude",
    "keep",
    "exclude-by-package",
    "lazy",
    "channel-in-site",
    "apps",
)
#: The environment's name in its lock file when the input form has no names (pixi's too).
DEFAULT_ENVIRONMENT = "default"
URL_SCHEMES = ("http", "https", "file")


@dataclass(frozen=True)
class Channel:
    """A channel entry as written, and the URL it resolves to."""

    entry: str
    url: str

    @property
    def local_path(self) -> Path | None:
        """The channel's folder when it is on this machine, else None."""
        parsed = urlparse(self.url)
        return Path(parsed.path) if parsed.scheme == "file" else None


@dataclass(frozen=True)
class EnvSpec:
    """An environment, whatever file it was written in.

    Attributes:
        path: the environment file (absolute).
        lock_path: the lock file that belongs to it.
        name: the environment's name, if given.
        channels: the channels, in priority order.
        dependencies: conda MatchSpec strings.
        pip: PEP 508 requirement strings, resolved from PyPI for Pyodide.
        pip_hashes: (project, sha256 digests) pins: the wheel taken must have one of them.
        environment: the environment's name inside the lock file.
        options: lite-env's own options written in the file.
        warnings: things worth telling the user that are not errors.
    """

    path: Path
    lock_path: Path
    name: str | None
    channels: tuple[Channel, ...]
    dependencies: tuple[str, ...]
    pip: tuple[str, ...] = ()
    pip_hashes: tuple[tuple[str, tuple[str, ...]], ...] = ()
    environment: str = DEFAULT_ENVIRONMENT
    options: BuildOptions = BuildOptions()
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def digest(self) -> str:
        """sha256 of what decides the solve, as written (so it survives moving the folder)."""
        content = {
            "channels": [c.entry for c in self.channels],
            "dependencies": list(self.dependencies),
            "pip": list(self.pip),
        }
        if self.pip_hashes:
            content["pip-hashes"] = [[name, list(hashes)] for name, hashes in self.pip_hashes]
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def read_text(path: Path) -> str:
    """The environment file's text; LiteEnvError when it is missing, too large or not UTF-8."""
    try:
        return read_small_file(path, MAX_FILE_SIZE).decode("utf-8")
    except FileNotFoundError:
        raise LiteEnvError(f"{path}: no such environment file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise LiteEnvError(f"{path}: cannot read the environment file: {error}") from None


def check_matchspec(text: str, location: str) -> str:
    """The MatchSpec as written; LiteEnvError at `location` when rattler refuses it."""
    try:
        MatchSpec(text)
    except Exception as error:  # rattler raises its own exception types, not one base class
        raise LiteEnvError(f"{location}: invalid MatchSpec {text!r}", hint=str(error)) from None
    return text


def check_requirement(text: str, location: str) -> Requirement:
    """The PEP 508 requirement; LiteEnvError at `location` when it does not parse."""
    try:
        return Requirement(text)
    except InvalidRequirement as error:
        raise LiteEnvError(
            f"{location}: invalid pip requirement {text!r}", hint=str(error)
        ) from None


def runtime_requirement(text: str, location: str) -> str | None:
    """The requirement as the runtime needs it: None when its environment marker is false in
    Pyodide (`sys_platform == "win32"`), else the requirement without its marker."""
    requirement = check_requirement(text, location)
    if requirement.marker is not None:
        if not requirement.marker.evaluate({**PYODIDE_MARKERS, "extra": ""}):
            return None
        requirement.marker = None
    return str(requirement)


def resolve_channel(entry: str, folder: Path, location: str) -> Channel:
    """A URL stays as it is; anything else is a folder relative to the environment file."""
    try:
        parsed = urlparse(entry)
        valid = parsed.port is None or 0 < parsed.port  # .port raises on a bad port
    except ValueError as error:
        raise LiteEnvError(f"{location}: invalid channel URL {entry!r}", hint=str(error)) from None
    if parsed.scheme in URL_SCHEMES:
        if not valid or (parsed.scheme != "file" and not parsed.hostname):
            raise LiteEnvError(f"{location}: invalid channel URL {entry!r}")
        return Channel(entry, entry.rstrip("/") + "/")
    if "://" in entry:
        raise LiteEnvError(f"{location}: unsupported channel URL {entry!r}")
    channel_dir = (folder / entry).resolve()
    if not channel_dir.is_dir():
        raise LiteEnvError(
            f"{location}: channel {entry!r} is not a folder ({channel_dir} does not exist)",
            hint="channels are folders relative to the environment file, or full URLs;"
            " build the default channel with `lite-env channel build`",
        )
    return Channel(entry, channel_dir.as_uri() + "/")


def parse_options(section: object, location: str, key: str = OWN_KEY) -> BuildOptions:
    """lite-env's own options from a mapping (`key` names it in messages)."""
    if section is None:
        return BuildOptions()
    if not isinstance(section, dict):
        raise LiteEnvError(f"{location}: `{key}` must be a mapping")
    unknown = sorted(set(section) - set(OPTIONS))
    if unknown:
        raise LiteEnvError(
            f"{location}: unknown `{key}` option {unknown[0]!r}",
            hint=f"known: {', '.join(OPTIONS)}",
        )
    bytecode = section.get("bytecode")
    if bytecode is not None and bytecode not in BYTECODE_MODES:
        raise LiteEnvError(
            f"{location}: `bytecode` is one of {', '.join(BYTECODE_MODES)}, not {bytecode!r}"
        )
    lazy, in_site = section.get("lazy", True), section.get("channel-in-site", False)
    for name, value in (("lazy", lazy), ("channel-in-site", in_site)):
        if not isinstance(value, bool):
            raise LiteEnvError(f"{location}: `{name}` is true or false, not {value!r}")
    by_package = section.get("exclude-by-package") or {}
    if not isinstance(by_package, dict):
        raise LiteEnvError(f"{location}: `exclude-by-package` maps package names to patterns")
    options = BuildOptions(
        bytecode=bytecode or "imported",
        preload=_strings(section, "preload", location),
        exclude=_strings(section, "exclude", location),
        keep=_strings(section, "keep", location),
        exclude_by_package=tuple(
            (str(name), _strings(by_package, name, location)) for name in sorted(by_package)
        ),
        lazy=lazy,
        channel_in_site=in_site,
    )
    try:
        return options.override(apps=_strings(section, "apps", location) or None)
    except LiteEnvError as error:
        raise LiteEnvError(f"{location}: {error.message}", hint=error.hint) from None


def _strings(section: dict, key: str, location: str) -> tuple[str, ...]:
    value = section.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise LiteEnvError(f"{location}: `{key}` must be a list of strings")
    return tuple(value)
