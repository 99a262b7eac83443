"""Print lite_env's import graph by layer and check the house rules; exit 1 on a violation.

Layers: the base (neutral: platform, errors, files, the .conda format, the canonical-archive
check, verification, options, the kernel's facts), the pipeline stages, lite_env/channel/ (a
client of the base), and the edge (the CLI and the jupyterlite addon, which may import
anything). Rules:

- no circle, counting imports inside functions too (so none can hide one);
- the base imports only the base; the channel imports the base and itself;
- a pipeline module imports the channel only through the one door: `lite_env.pip_channel`
  importing `lite_env.channel.pypi`;
- `rattler_build` is imported only by `lite_env.channel.recipes`.

Usage: python scripts/import_graph.py [--quiet]
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "lite_env"
BASE = frozenset(
    {
        "lite_env",
        "lite_env.archive",
        "lite_env.cache",
        "lite_env.conda_file",
        "lite_env.errors",
        "lite_env.files",
        "lite_env.kernel",
        "lite_env.options",
        "lite_env.platform",
        "lite_env.pyodide_node",
        "lite_env.verify",
    }
)
EDGE = frozenset({"lite_env.__main__", "lite_env.addon", "lite_env.cli", "lite_env.progress"})
CHANNEL = "lite_env.channel"
#: The pipeline's one door into the channel builder: (importer, imported).
DOOR = ("lite_env.pip_channel", "lite_env.channel.pypi")
#: Third-party modules only one module of lite_env may import.
CONFINED = {"rattler_build": "lite_env.channel.recipes"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    if module in BASE:
        return "base"
    if module in EDGE:
        return "edge"
    if module == CHANNEL or module.startswith(CHANNEL + "."):
        return "channel"
    return "pipeline"


def imports(path: Path, modules: set[str]) -> tuple[set[str], set[str]]:
    """The lite_env modules and the top-level third-party names a file imports (anywhere)."""
    inside, outside = set(), set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from lite_env.channel import pypi` imports the module lite_env.channel.pypi
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in names:
            if name.split(".")[0] == "lite_env":
                while name not in modules and "." in name:
                    name = name.rsplit(".", 1)[0]
                inside.add(name)
            else:
                outside.add(name.split(".")[0])
    return inside, outside


def graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Each lite_env module's lite_env imports, and its third-party imports."""
    paths = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
    edges, external = {}, {}
    for module, path in paths.items():
        inside, outside = imports(path, set(paths))
        edges[module] = inside - {module}
        external[module] = outside
    return edges, external


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One circle per strongly connected group of modules (Tarjan), as a path of modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in sorted(edges.get(module, ())):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return found


def violations(edges: dict[str, set[str]], external: dict[str, set[str]]) -> list[str]:
    """Every broken rule, one line each (an empty list when the house is in order)."""
    problems = [f"circle: {' <-> '.join(group)}" for group in circles(edges)]
    for module, targets in sorted(edges.items()):
        for target in sorted(targets):
            source_layer, target_layer = layer(module), layer(target)
            if source_layer == "base" and target_layer != "base":
                problems.append(f"{module} (base) imports {target} ({target_layer})")
            elif source_layer == "channel" and target_layer not in ("base", "channel"):
                problems.append(f"{module} (channel) imports {target} ({target_layer})")
            elif source_layer == "pipeline" and target_layer == "channel":
                if (module, target) != DOOR:
                    problems.append(
                        f"{module} imports {target}: the pipeline reaches the channel builder"
                        f" only through {DOOR[1]}, from {DOOR[0]}"
                    )
    for name, allowed in CONFINED.items():
        for module, names in sorted(external.items()):
            if name in names and module != allowed:
                problems.append(f"{module} imports {name}: only {allowed} may")
    return problems


def main(argv: list[str]) -> int:
    edges, external = graph()
    if "--quiet" not in argv:
        for kind in ("base", "pipeline", "channel", "edge"):
            print(f"[{kind}]")
            for module in sorted(m for m in edges if layer(m) == kind):
                print(f"  {module} -> {', '.join(sorted(edges[module])) or '-'}")
    problems = violations(edges, external)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
