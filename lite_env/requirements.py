"""Read a pip requirements file into an EnvSpec: its requirements become `pip:` entries on
top of the kernel's conda packages, from the channel `channel/` beside the file.

Understood: `-r`/`--requirement` includes (relative to the including file), `--hash` pins
(a hashed requirement is pinned with `==`, and `--require-hashes` asks a hash of every one),
environment markers (evaluated for the runtime: Pyodide 314, CPython 3.14, emscripten), `#`
comments and `\\` continuations. Refused, with `file:line`: editable installs, VCS and URL
or path requirements, constraints files and index options (lite-env resolves from PyPI).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from lite_env.envspec import (
    EnvSpec,
    check_requirement,
    read_text,
    resolve_channel,
    runtime_requirement,
)
from lite_env.errors import LiteEnvError
from lite_env.kernel import KERNEL_PACKAGES

#: The conda channel of a requirements file: a folder beside it, as environment.yml's default.
CHANNEL = "./channel"
#: The most files one requirements file may include, directly or not.
MAX_INCLUDES = 100
COMMENT = re.compile(r"(^|\s)#.*$")
HASH = re.compile(r"^sha256:([0-9a-f]{64})$")
#: The first option after a requirement, and each `--hash` option.
OPTION = re.compile(r"(^|\s)--?[A-Za-z]")
HASH_OPTION = re.compile(r"--hash[=\s]\s*(\S+)")
#: A URL (`git+https://`, `https://`), a path (`./pkg`, `/pkg`, `~/pkg`) or an archive.
NOT_A_NAME = re.compile(
    r"^([A-Za-z][A-Za-z0-9+.-]*:|\.{0,2}/|~)|\.(whl|zip|tar\.gz|tgz|tar\.bz2)\b", re.IGNORECASE
)
#: Options of pip's that do not change what is resolved here: accepted, not used.
IGNORED_OPTIONS = frozenset({"--prefer-binary", "--only-binary"})


def is_requirements_file(path: Path) -> bool:
    """Whether the file is read as pip requirements (`requirements.txt`, `*.txt`, `*.in`)."""
    return path.suffix in (".txt", ".in")


@dataclass
class _Collected:
    """What the files read so far hold."""

    requirements: list[str] = field(default_factory=list)
    hashes: dict[str, list[str]] = field(default_factory=dict)
    unhashed: list[tuple[str, str]] = field(default_factory=list)  # (location, project)
    require_hashes: str | None = None  # where `--require-hashes` was given
    files: list[Path] = field(default_factory=list)


def read_requirements(path: Path) -> EnvSpec:
    """Read a requirements file (and its includes).

    Raises LiteEnvError naming the file and line of an invalid or unsupported line, a
    hashed requirement that is not pinned with `==`, or an include that is missing or
    includes itself.
    """
    collected = _Collected()
    _read(path, collected, ())
    if collected.hashes or collected.require_hashes:
        for location, project in collected.unhashed:
            raise LiteEnvError(
                f"{location}: {project} has no --hash, and hash-checking mode is on"
                f" ({collected.require_hashes or 'another requirement has one'})",
                hint="give every requirement a `--hash=sha256:...`, as pip requires",
            )
    channel = resolve_channel(CHANNEL, path.parent, str(path))
    return EnvSpec(
        path=path,
        lock_path=path.with_suffix(".lock"),
        name=None,
        channels=(channel,),
        dependencies=KERNEL_PACKAGES,
        pip=tuple(collected.requirements),
        pip_hashes=tuple(
            (name, tuple(sorted(set(hashes)))) for name, hashes in collected.hashes.items()
        ),
    )


def _read(path: Path, collected: _Collected, including: tuple[Path, ...]) -> None:
    path = path.absolute()
    if path in including:
        raise LiteEnvError(f"{including[-1]}: {path} includes itself (through -r)")
    collected.files.append(path)
    if len(collected.files) > MAX_INCLUDES:
        raise LiteEnvError(f"{path}: more than {MAX_INCLUDES} requirements files included")
    for number, line in _logical_lines(read_text(path)):
        location = f"{path}:{number}"
        if line.startswith("-"):
            _option(line.split(), location, path, collected, (*including, path))
        elif line:
            _requirement(line, location, collected)


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each line once comments and continuations are gone."""
    joined: list[tuple[int, str]] = []
    start, parts = 0, []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = COMMENT.sub("", raw)
        if not parts:
            start = number
        if line.endswith("\\"):
            parts.append(line[:-1])
            continue
        parts.append(line)
        joined.append((start, " ".join(parts).strip()))
        parts = []
    if parts:
        joined.append((start, " ".join(parts).strip()))
    return joined


def _option(
    words: list[str],
    location: str,
    path: Path,
    collected: _Collected,
    including: tuple[Path, ...],
) -> None:
    option, _, value = words[0].partition("=")
    value = value or (words[1] if len(words) > 1 else "")
    if option in ("-r", "--requirement"):
        if not value:
            raise LiteEnvError(f"{location}: `{option}` needs a file name")
        included = path.parent / value
        if not included.is_file():
            raise LiteEnvError(f"{location}: included file {value!r} does not exist")
        _read(included, collected, including)
    elif option in ("-e", "--editable"):
        raise LiteEnvError(
            f"{location}: editable installs are not supported",
            hint="a site ships built packages: name the project by its PyPI name and version",
        )
    elif option == "--require-hashes":
        collected.require_hashes = collected.require_hashes or f"--require-hashes at {location}"
    elif option not in IGNORED_OPTIONS:
        raise LiteEnvError(
            f"{location}: pip option {option!r} is not supported",
            hint="lite-env resolves requirements from PyPI for Pyodide; constraints files and"
            " other indexes are not read",
        )


def _requirement(line: str, location: str, collected: _Collected) -> None:
    option = OPTION.search(line)
    text = line[: option.start()].strip() if option else line
    hashes = [_hash(h, location) for h in HASH_OPTION.findall(line[len(text) :])]
    if option and HASH_OPTION.sub("", line[len(text) :]).strip():
        raise LiteEnvError(
            f"{location}: only `--hash=sha256:<64 hex digits>` options may follow a requirement"
        )
    if NOT_A_NAME.search(text):
        raise LiteEnvError(
            f"{location}: {text!r}: VCS, URL and path requirements are not supported",
            hint="name the project by its PyPI name (and version)",
        )
    requirement = check_requirement(text, location)
    if requirement.url:
        raise LiteEnvError(
            f"{location}: {requirement.name} @ {requirement.url}: VCS, URL and path"
            " requirements are not supported",
            hint="name the project by its PyPI name (and version)",
        )
    kept = runtime_requirement(text, location)
    if kept is None:  # its marker is false in Pyodide
        return
    name = canonicalize_name(requirement.name)
    if hashes:
        _check_pinned(requirement, location)
        collected.hashes.setdefault(name, []).extend(hashes)
    else:
        collected.unhashed.append((location, name))
    collected.requirements.append(kept)


def _hash(value: str, location: str) -> str:
    match = HASH.match(value)
    if match is None:
        raise LiteEnvError(
            f"{location}: --hash={value}: lite-env checks `sha256:<64 hex digits>` hashes"
        )
    return match.group(1)


def _check_pinned(requirement: Requirement, location: str) -> None:
    specifiers = list(requirement.specifier)
    exact = len(specifiers) == 1 and specifiers[0].operator in ("==", "===")
    if not exact or "*" in specifiers[0].version:
        raise LiteEnvError(
            f"{location}: {requirement.name} has --hash pins but is not pinned with `==`",
            hint="hash-checking mode needs one exact version per project, as pip's does",
        )
