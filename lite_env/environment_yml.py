"""Read a conda `environment.yml` into an `EnvSpec`: MatchSpecs, pip requirements, channels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from lite_env.envspec import (
    OWN_KEY,
    EnvSpec,
    check_matchspec,
    check_requirement,
    parse_options,
    read_text,
    resolve_channel,
)
from lite_env.errors import LiteEnvError

#: Keys that conda itself writes into environment files; accepted and not used.
CONDA_KEYS = frozenset({"variables", "prefix"})
#: The most values an environment file may hold once its YAML aliases are expanded.
MAX_VALUES = 100_000
KNOWN_KEYS = frozenset({"name", "channels", "dependencies", OWN_KEY}) | CONDA_KEYS
#: Channel entries that only tell conda to leave out its default channels.
IGNORED_CHANNELS = frozenset({"nodefaults"})


def read_environment_yml(path: Path) -> EnvSpec:
    """Read and check an environment file.

    Raises LiteEnvError naming the file and line for bad YAML, a missing or malformed
    `dependencies` list, an invalid MatchSpec or pip requirement, or a channel that is
    neither a URL nor an existing folder.
    """
    text = read_text(path)
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
            conda.append(check_matchspec(entry, where.item(dependencies, index)))
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
        resolve_channel(str(entry), path.parent, where.item(channels_node, index))
        for index, entry in enumerate(channels_node)
        if str(entry) not in IGNORED_CHANNELS
    )
    if not channels:
        raise LiteEnvError(
            f"{path}: no channels given",
            hint="add a `channels:` list with an emscripten-wasm32 channel (a folder or a URL)",
        )
    options = parse_options(document.get(OWN_KEY), where.key(document, OWN_KEY))
    return EnvSpec(
        path=path,
        lock_path=path.with_suffix(".lock"),
        name=name,
        options=options,
        channels=channels,
        dependencies=tuple(conda),
        pip=tuple(pip),
        warnings=tuple(warnings),
    )


def _parse_pip(entry: CommentedMap, where: _Locator) -> list[str]:
    requirements = entry["pip"]
    if not isinstance(requirements, CommentedSeq):
        raise LiteEnvError(f"{where.key(entry, 'pip')}: `pip` must be a list of requirements")
    return [
        str(check_requirement(str(requirement), where.item(requirements, index)))
        for index, requirement in enumerate(requirements)
    ]


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
