"""Read a conda `environment.yml` into an `EnvSpec`: MatchSpecs, pip requirements, channels."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from packaging.requirements import InvalidRequirement, Requirement
from rattler import MatchSpec
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from lite_env.errors import LiteEnvError
from lite_env.files import read_small_file
from lite_env.options import BYTECODE_MODES, BuildOptions

#: Keys that conda itself writes into environment files; accepted and not used.
CONDA_KEYS = frozenset({"variables", "prefix"})
#: lite-env's own section: how the environment is shipped (see BuildOptions).
OWN_KEY = "lite-env"
#: The largest environment file read (bytes), and the most values it may hold once its
#: YAML aliases are expanded.
MAX_FILE_SIZE = 1024**2
MAX_VALUES = 100_000
KNOWN_KEYS = frozenset({"name", "channels", "dependencies", OWN_KEY}) | CONDA_KEYS
#: Channel entries that only tell conda to leave out its default channels.
IGNORED_CHANNELS = frozenset({"nodefaults"})
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
    """A parsed environment file.

    Attributes:
        path: the environment file (absolute).
        name: the environment's name, if given.
        channels: the channels, in priority order.
        dependencies: conda MatchSpec strings.
        pip: PEP 508 requirement strings from the `pip:` list.
        warnings: things worth telling the user that are not errors.
    """

    path: Path
    name: str | None
    channels: tuple[Channel, ...]
    dependencies: tuple[str, ...]
    pip: tuple[str, ...] = ()
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
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def read_spec(path: str | Path) -> EnvSpec:
    """Read and check an environment file.

    Raises LiteEnvError naming the file and line for bad YAML, a missing or malformed
    `dependencies` list, an invalid MatchSpec or pip requirement, or a channel that is
    neither a URL nor an existing folder.
    """
    path = Path(path).absolute()
    try:
        text = read_small_file(path, MAX_FILE_SIZE).decode("utf-8")
    except FileNotFoundError:
        raise LiteEnvError(f"{path}: no such environment file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise LiteEnvError(f"{path}: cannot read the environment file: {error}") from None
    try:
        document = YAML(typ="rt").load(text)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise LiteEnvError(f"{path}{line}: invalid YAML: {error.problem or error}") from None
    except YAMLError as error:
        raise LiteEnvError(f"{path}: invalid YAML: {error}") from None
    _check_expanded_size(path, document)
    return _parse_document(path, document)


def _check_expanded_size(path: Path, document: object) -> None:
    """Refuse a document of more than MAX_VALUES values once aliases are expanded: a few
    hundred bytes of nested aliases (a "billion laughs") would otherwise expand to gigabytes
    in any code that walks it."""
    stack, count = [document], 0
    while stack:
        value = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise LiteEnvError(
                f"{path}: more than {MAX_VALUES:,} values once YAML aliases are expanded;"
                " refusing it",
                hint="an environment file needs no aliases; write the values out",
            )
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


def _parse_document(path: Path, document: object) -> EnvSpec:
    where = _Locator(path)
    if not isinstance(document, CommentedMap):
        raise LiteEnvError(
            f"{path}: an environment file is a mapping with `channels` and `dependencies`",
            hint="see conda's environment.yml format",
        )
    warnings = [
        f"{where.key(document, key)}: unknown key {key!r} is ignored"
        for key in document
        if key not in KNOWN_KEYS
    ]
    name = document.get("name")
    if name is not None and not isinstance(name, str):
        raise LiteEnvError(f"{where.key(document, 'name')}: `name` must be a string")

    if "dependencies" not in document:
        raise LiteEnvError(f"{path}: missing `dependencies`", hint="list the packages to install")
    dependencies = document["dependencies"]
    if not isinstance(dependencies, CommentedSeq):
        raise LiteEnvError(f"{where.key(document, 'dependencies')}: `dependencies` must be a list")
    conda, pip = [], []
    for index, entry in enumerate(dependencies):
        if isinstance(entry, str):
            conda.append(_check_matchspec(entry, where.item(dependencies, index)))
        elif isinstance(entry, CommentedMap) and list(entry) == ["pip"]:
            pip.extend(_parse_pip(entry, where))
        else:
            raise LiteEnvError(
                f"{where.item(dependencies, index)}: a dependency is a MatchSpec string"
                f" or a `pip:` list, not {entry!r}"
            )

    channels_node = document.get("channels") or CommentedSeq()
    if not isinstance(channels_node, CommentedSeq):
        raise LiteEnvError(f"{where.key(document, 'channels')}: `channels` must be a list")
    channels = tuple(
        _resolve_channel(str(entry), path.parent, where.item(channels_node, index))
        for index, entry in enumerate(channels_node)
        if str(entry) not in IGNORED_CHANNELS
    )
    if not channels:
        raise LiteEnvError(
            f"{path}: no channels given",
            hint="add a `channels:` list with an emscripten-wasm32 channel (a folder or a URL)",
        )
    options = _parse_options(document.get(OWN_KEY), where.key(document, OWN_KEY))
    return EnvSpec(
        path=path,
        name=name,
        options=options,
        channels=channels,
        dependencies=tuple(conda),
        pip=tuple(pip),
        warnings=tuple(warnings),
    )


#: The keys of the `lite-env:` section.
OPTIONS = (
    "bytecode",
    "preload",
    "exclude",
    "keep",
    "exclude-by-package",
    "lazy",
    "channel-in-site",
)


def _parse_options(section: object, location: str) -> BuildOptions:
    if section is None:
        return BuildOptions()
    if not isinstance(section, CommentedMap):
        raise LiteEnvError(f"{location}: `{OWN_KEY}` must be a mapping")
    unknown = sorted(set(section) - set(OPTIONS))
    if unknown:
        raise LiteEnvError(
            f"{location}: unknown `{OWN_KEY}` option {unknown[0]!r}",
            hint=f"known: {', '.join(OPTIONS)}",
        )
    bytecode = section.get("bytecode")
    if bytecode is not None and bytecode not in BYTECODE_MODES:
        raise LiteEnvError(
            f"{location}: `bytecode` is one of {', '.join(BYTECODE_MODES)}, not {bytecode!r}"
        )
    lazy, in_site = section.get("lazy", True), section.get("channel-in-site", False)
    for key, value in (("lazy", lazy), ("channel-in-site", in_site)):
        if not isinstance(value, bool):
            raise LiteEnvError(f"{location}: `{key}` is true or false, not {value!r}")
    by_package = section.get("exclude-by-package") or {}
    if not isinstance(by_package, dict):
        raise LiteEnvError(f"{location}: `exclude-by-package` maps package names to patterns")
    return BuildOptions(
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


def _strings(section: dict, key: str, location: str) -> tuple[str, ...]:
    value = section.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise LiteEnvError(f"{location}: `{key}` must be a list of strings")
    return tuple(value)


def _parse_pip(entry: CommentedMap, where: _Locator) -> list[str]:
    requirements = entry["pip"]
    if not isinstance(requirements, CommentedSeq):
        raise LiteEnvError(f"{where.key(entry, 'pip')}: `pip` must be a list of requirements")
    checked = []
    for index, requirement in enumerate(requirements):
        try:
            checked.append(str(Requirement(str(requirement))))
        except InvalidRequirement as error:
            raise LiteEnvError(
                f"{where.item(requirements, index)}: invalid pip requirement {requirement!r}",
                hint=str(error),
            ) from None
    return checked


def _check_matchspec(text: str, location: str) -> str:
    try:
        MatchSpec(text)
    except Exception as error:  # rattler raises its own exception types, not one base class
        raise LiteEnvError(f"{location}: invalid MatchSpec {text!r}", hint=str(error)) from None
    return text


def _resolve_channel(entry: str, folder: Path, location: str) -> Channel:
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


@dataclass(frozen=True)
class _Locator:
    """Turns YAML nodes into `file:line` locations for messages."""

    path: Path

    def key(self, node: CommentedMap, key: str) -> str:
        try:
            return f"{self.path}:{node.lc.key(key)[0] + 1}"
        except (KeyError, TypeError):
            return str(self.path)

    def item(self, node: CommentedSeq, index: int) -> str:
        try:
            return f"{self.path}:{node.lc.item(index)[0] + 1}"
        except (KeyError, TypeError, IndexError):
            return str(self.path)
