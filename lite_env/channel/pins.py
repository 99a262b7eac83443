"""Read and write `recipes/pypi.yaml`: the PyPI wheels of the channel, pinned by sha256."""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from lite_env.channel.pypi import WheelPin
from lite_env.errors import LiteEnvError
from lite_env.files import write_atomically

FILE_NAME = "pypi.yaml"
HEADER = """\
# PyPI wheels converted into conda packages of this channel (noarch; emscripten-wasm32 for
# PEP 783 wheels built for the runtime's ABI, taken when a project has no pure wheel).
# Written by `lite-env channel add-pypi`; `lite-env channel build` fetches exactly these
# files and checks their sha256. `requirements` is what was asked for, `wheels` the closure.
"""


@dataclass(frozen=True)
class PypiPins:
    """What was asked for (requirements, and wheels that ship wheels) and what it resolved to."""

    requirements: tuple[str, ...] = ()
    find_in: tuple[str, ...] = ()
    wheels: tuple[WheelPin, ...] = field(default=())


def read_pins(recipes_dir: Path) -> PypiPins:
    """The pins under recipes_dir, or empty pins when there is no pypi.yaml."""
    path = recipes_dir / FILE_NAME
    if not path.exists():
        return PypiPins()
    try:
        document = YAML(typ="safe").load(path.read_text()) or {}
        return PypiPins(
            requirements=tuple(document.get("requirements") or ()),
            find_in=tuple(document.get("find-in") or ()),
            wheels=tuple(WheelPin(**entry) for entry in document.get("wheels") or ()),
        )
    except (YAMLError, TypeError, AttributeError) as error:
        raise LiteEnvError(f"{path}: not a valid pins file", hint=str(error)) from None


def write_pins(recipes_dir: Path, pins: PypiPins) -> Path:
    """Write the pins (sorted, so that the file changes only when a pin does)."""
    document = {
        "requirements": sorted(set(pins.requirements)),
        "find-in": sorted(set(pins.find_in)),
        "wheels": [
            {k: v for k, v in asdict(pin).items() if v is not None}
            for pin in sorted(pins.wheels, key=lambda p: (p.name, p.version))
        ],
    }
    stream = io.StringIO()
    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.dump(document, stream)
    path = recipes_dir / FILE_NAME
    recipes_dir.mkdir(parents=True, exist_ok=True)
    write_atomically(path, HEADER + stream.getvalue())
    return path
