"""Read and write `recipes/pypi.yaml`: the PyPI wheels of the channel, pinned by sha256."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from lite_env.channel.pypi import WheelPin, resolve
from lite_env.channel.recipes import recipe_packages
from lite_env.channel.wheel import conda_name
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


@dataclass(frozen=True)
class AddedPins:
    """What `add_pypi` pinned: the pins file, the pins before and after, and the requested
    packages left to the recipes that build them."""

    path: Path
    before: PypiPins
    after: PypiPins
    from_recipes: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        """The requested packages a recipe builds, the wheels new in the pins, then a summary."""
        before = {(p.name, p.version) for p in self.before.wheels}
        new = [w for w in self.after.wheels if (w.name, w.version) not in before]
        recipes = self.path.parent
        return [
            *(
                f"  = {n}: built by a recipe in {recipes}, not taken from PyPI"
                for n in self.from_recipes
            ),
            *(f"  + {wheel.name} {wheel.version}" for wheel in new),
            f"pinned {len(self.after.wheels)} wheels in {self.path};"
            " `lite-env channel build` converts them",
        ]


def add_pypi(
    recipes_dir: Path, requirements: Sequence[str], find_in: Sequence[str], *, cache_dir: Path
) -> AddedPins:
    """Resolve the pinned requirements plus these for Pyodide and write the pins again.

    Wheels already pinned are kept where they still fit; `find_in` names PyPI packages whose
    data files ship wheels (the JupyterLite kernel's own). A package that a recipe in
    `recipes_dir` builds is never taken from PyPI: the recipe wins.
    """
    try:
        asked = [conda_name(Requirement(requirement).name) for requirement in requirements]
    except InvalidRequirement as error:
        raise LiteEnvError("not a valid requirement", hint=str(error)) from None
    pins = read_pins(recipes_dir)
    from_recipes = recipe_packages(recipes_dir)
    requirements = (*pins.requirements, *requirements)
    find_in = (*pins.find_in, *find_in)
    wheels = resolve(
        requirements,
        cache_dir=cache_dir,
        preferred=pins.wheels,
        find_in=find_in,
        provided=from_recipes,
    )
    after = PypiPins(tuple(requirements), tuple(find_in), tuple(wheels))
    in_recipes = tuple(name for name in asked if name in from_recipes)
    return AddedPins(write_pins(recipes_dir, after), pins, after, in_recipes)
