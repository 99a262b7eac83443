"""Parse TOML with tomllib and point at the line of a key, for `file:line` messages.

tomllib gives values without positions (and, before Python 3.14, puts the line of a syntax
error only in its message). `TomlLines` scans the text once for table headers and `key =`
lines, so a message about a value can name the line of its key, or of the nearest enclosing
table when the value sits inside an inline table or an array.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from lite_env.errors import LiteEnvError

KEY_PART = r'[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|\'[^\']*\''
DOTTED_KEY = rf"(?:{KEY_PART})(?:\s*\.\s*(?:{KEY_PART}))*"
HEADER = re.compile(rf"^\s*\[\[?\s*({DOTTED_KEY})\s*\]\]?\s*(?:#.*)?$")
ASSIGNMENT = re.compile(rf"^\s*({DOTTED_KEY})\s*=")
POSITION = re.compile(r" \(at (?:line (\d+), column \d+|end of document)\)$")

Key = tuple[str, ...]


def key_parts(text: str) -> Key:
    """`a."b.c".d` → ("a", "b.c", "d")."""
    return tuple(part.strip("\"'") for part in re.findall(KEY_PART, text))


@dataclass(frozen=True)
class TomlLines:
    """The line of every table header and key assignment in a TOML text (1-based)."""

    path: Path
    lines: dict[Key, int]
    last_line: int

    @classmethod
    def scan(cls, path: Path, text: str) -> TomlLines:
        found: dict[Key, int] = {}
        table: Key = ()
        lines = text.splitlines()
        for number, line in enumerate(lines, start=1):
            if header := HEADER.match(line):
                table = key_parts(header.group(1))
                found.setdefault(table, number)
            elif assignment := ASSIGNMENT.match(line):
                found.setdefault(table + key_parts(assignment.group(1)), number)
        return cls(path, found, max(len(lines), 1))

    def at(self, *key: str) -> str:
        """`file:line` of the key, or of its nearest enclosing key or table that has a line."""
        for end in range(len(key), 0, -1):
            if key[:end] in self.lines:
                return f"{self.path}:{self.lines[key[:end]]}"
        return str(self.path)


def load_toml(path: Path, text: str) -> tuple[dict, TomlLines]:
    """The TOML document and its lines; LiteEnvError with `file:line` when it does not parse."""
    lines = TomlLines.scan(path, text)
    try:
        return tomllib.loads(text), lines
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        position = POSITION.search(message)
        line = getattr(error, "lineno", None)  # Python >= 3.14
        if line is None and position:
            line = int(position.group(1)) if position.group(1) else lines.last_line
        problem = POSITION.sub("", message)
        where = f"{path}:{line}" if line else str(path)
        raise LiteEnvError(f"{where}: invalid TOML: {problem}") from None
