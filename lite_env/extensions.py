"""The frontend half of an environment: the JupyterLab extensions its packages ship.

A conda package with a browser part (ipywidgets' widget manager, plotly's mime renderer)
ships it prebuilt as a federated JupyterLab extension in
`share/jupyter/labextensions/<name>/` (or `<@scope>/<name>/`). lite-env installs the
extensions found in the solved environment into the JupyterLite site, and nothing from the
build machine's own Python environment except the Pyodide kernel's extension, which the site
needs to have a kernel at all. The image leaves these folders out (pack.DEFAULT_EXCLUDE): the
kernel's worker never reads them.

ipywidgets and the kernel's widgetsnbextension shim: ipywidgets 8 requires
`widgetsnbextension ~=4.0.14`, whose real wheel is only the classic Notebook's nbextension (JS
for a page JupyterLite never shows). jupyterlite-pyodide-kernel ships an empty shim,
widgetsnbextension 4.0.999, in its extension's `static/pypi/`, so that piplite can satisfy
that requirement. The shim wins: `recipes/pypi.yaml` takes wheels from the kernel
(`find-in: jupyterlite-pyodide-kernel==0.8.6`) before PyPI's whenever they satisfy the
requirement, and 4.0.999 does satisfy `~=4.0.14`. So the environment's widgetsnbextension is
the very wheel the kernel's piplite index offers (same version, same bytes): a `%pip install`
in the browser finds it already installed, and the real package's classic-notebook files
never reach the site.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from lite_env import __version__
from lite_env.errors import LiteEnvError
from lite_env.files import copy_folder_out, prefix_file
from lite_env.kernel import KERNEL_DISTRIBUTION, KERNEL_EXTENSION

#: Where a prefix keeps its federated JupyterLab extensions.
LABEXTENSIONS = Path("share") / "jupyter" / "labextensions"
#: An npm package name (an extension's folder under LABEXTENSIONS): never a path elsewhere.
NPM_NAME = re.compile(r"(@[A-Za-z0-9~-][A-Za-z0-9._~-]*/)?[A-Za-z0-9~-][A-Za-z0-9._~-]*")


@dataclass(frozen=True)
class LabExtension:
    """One prebuilt (federated) JupyterLab extension.

    Attributes:
        name: its npm name, from package.json (e.g. "@jupyter-widgets/jupyterlab-manager").
        version: its npm version, from package.json.
        package: what ships it: the conda package in the environment ("jupyterlab-widgets
            3.0.17"), or for the kernel's extension the build machine's Python distribution.
        folder: the extension's folder (the one holding package.json).
        from_environment: False for the kernel's extension, taken from the build machine.
    """

    name: str
    version: str
    package: str
    folder: Path
    from_environment: bool = True

    @property
    def size(self) -> int:
        """Bytes of its files (source maps included; the site build drops them)."""
        return sum(p.stat().st_size for p in self.folder.rglob("*") if p.is_file())


def environment_extensions(prefix: Path) -> tuple[LabExtension, ...]:
    """The prebuilt extensions installed in `prefix`, sorted by name, each with the conda
    package that ships it (from conda-meta/; "" if no package claims its package.json)."""
    root = prefix / LABEXTENSIONS
    owners = _owners(prefix)
    found = []
    for package_json in _package_jsons(root):
        document = _read_package_json(package_json)
        if not _is_prebuilt(document):
            continue  # a source extension needs a JupyterLab build: jupyterlite-core skips it too
        relative = package_json.relative_to(prefix).as_posix()
        prefix_file(prefix, relative)  # no folder on the way is a symlink
        folder = package_json.parent.relative_to(root).as_posix()
        if document["name"] != folder or not NPM_NAME.fullmatch(folder):
            raise LiteEnvError(
                f"{relative}: the extension's name {document['name']!r} is not its folder's",
                hint="a JupyterLab extension lives in share/jupyter/labextensions/<its npm"
                f" name>/ ({owners.get(relative) or 'no package claims it'})",
            )
        found.append(
            LabExtension(
                name=document["name"],
                version=str(document.get("version", "")),
                package=owners.get(relative, ""),
                folder=package_json.parent,
            )
        )
    return tuple(sorted(found, key=lambda e: e.name))


def kernel_extension() -> LabExtension:
    """The Pyodide kernel's extension as installed for the build machine's Python."""
    for root in _machine_roots():
        package_json = root / KERNEL_EXTENSION / "package.json"
        if package_json.is_file():
            document = _read_package_json(package_json)
            try:
                version = metadata.version(KERNEL_DISTRIBUTION)
                package = f"{KERNEL_DISTRIBUTION} {version}"
            except metadata.PackageNotFoundError:
                package = KERNEL_DISTRIBUTION
            return LabExtension(
                name=document["name"],
                version=str(document.get("version", "")),
                package=package,
                folder=package_json.parent,
                from_environment=False,
            )
    raise LiteEnvError(
        f"the Pyodide kernel's JupyterLab extension ({KERNEL_EXTENSION}) is not installed",
        hint=f"pip install {KERNEL_DISTRIBUTION} into lite-env's Python environment",
    )


def site_extensions(
    environment: Sequence[LabExtension], *, ours: bool = False
) -> tuple[LabExtension, ...]:
    """What a site installs: the kernel's extension (and lite-env's kernels extension when
    `ours`: for a site of several environments, or one whose kernel starts with the page),
    then the environments' (the first of a name wins).

    An environment extension named like the kernel's is left out: lite-env configures the
    kernel it runs with (its settings, its loader), not another version of it.
    """
    kernels = (kernel_extension(), *([kernels_extension()] if ours else []))
    taken = {e.name for e in kernels}
    chosen = []
    for extension in environment:
        if extension.name not in taken:
            chosen.append(extension)
            taken.add(extension.name)
    return (*kernels, *chosen)


def kernels_extension() -> LabExtension:
    """lite-env's kernels extension (lite_env/labextension): a kernel per environment, and
    the default kernel's early worker handed to it."""
    folder = Path(__file__).with_name("labextension")
    document = _read_package_json(folder / "package.json")
    return LabExtension(
        name=document["name"],
        version=document["version"],
        package=f"lite-env {__version__}",
        folder=folder,
        from_environment=False,
    )


def copy_extension(extension: LabExtension, extensions_dir: Path) -> Path:
    """Copy an extension into `extensions_dir` (replacing one of the same name), without
    source maps, as jupyterlite-core does with --no-sourcemaps; return its folder.

    The one way an extension leaves a prefix: `lite-env build` hands jupyterlite-core this
    copy, the addon copies into the site's `extensions/`. A symlink or special file in the
    extension is refused (LiteEnvError), never followed, so no host file reaches a site.
    """
    if not NPM_NAME.fullmatch(extension.name):
        raise LiteEnvError(f"{extension.folder}: {extension.name!r} is not an extension's name")
    target = extensions_dir / extension.name
    shutil.rmtree(target, ignore_errors=True)
    copy_folder_out(extension.folder, target, skip=".map")
    return target


def _package_jsons(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted([*root.glob("*/package.json"), *root.glob("@*/*/package.json")])


def _read_package_json(path: Path) -> dict:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise LiteEnvError(f"{path}: not a readable package.json ({error})") from None
    if not isinstance(document, dict) or not isinstance(document.get("name"), str):
        raise LiteEnvError(f"{path}: package.json has no name")
    return document


def _is_prebuilt(document: dict) -> bool:
    """jupyterlite-core's test: a federated extension says which module to load."""
    build = (document.get("jupyterlab") or {}).get("_build") or {}
    return build.get("load") is not None


def _owners(prefix: Path) -> dict[str, str]:
    """Each labextension package.json in the prefix → "name version" of its conda package."""
    owners = {}
    for meta in sorted((prefix / "conda-meta").glob("*.json")):
        try:
            record = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        files: Iterable[str] = record.get("files") or ()
        for path in files:
            if path.startswith(f"{LABEXTENSIONS.as_posix()}/") and path.endswith("/package.json"):
                owners[path] = f"{record.get('name', '')} {record.get('version', '')}".strip()
    return owners


def _machine_roots() -> list[Path]:
    """Where the build machine's Python keeps labextensions: its prefix, then Jupyter's path."""
    roots = [Path(sys.prefix) / LABEXTENSIONS]
    try:
        from jupyter_core.paths import jupyter_path

        roots += [Path(p) for p in jupyter_path("labextensions")]
    except ImportError:
        pass
    return list(dict.fromkeys(roots))
