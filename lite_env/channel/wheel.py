"""Convert a wheel into a conda package, reproducibly: a pure-Python wheel into a `noarch:
python` one, a PEP 783 wheel for the runtime's ABI into an emscripten-wasm32 one."""

from __future__ import annotations

import base64
import calendar
import hashlib
import re
import zipfile
from collections.abc import Sequence
from configparser import ConfigParser
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser
from pathlib import Path

from packaging.requirements import Requirement
from packaging.tags import compatible_tags, cpython_tags
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from lite_env.errors import LiteEnvError
from lite_env.package import PackageFile, write_conda
from lite_env.solve import PLATFORM, PYODIDE_ABI, PYTHON_VERSION, WHEEL_PLATFORM

#: PyPI names that conda-forge spells differently from the normalized PyPI name.
CONDA_FORGE_NAMES = {
    "stack-data": "stack_data",
    "pure-eval": "pure_eval",
    "typing-extensions": "typing_extensions",
    "jupyter-core": "jupyter_core",
    "jupyter-client": "jupyter_client",
    "jupyter-server": "jupyter_server",
    "ipython-genutils": "ipython_genutils",
    "ipython-pygments-lexers": "ipython_pygments_lexers",
    "importlib-metadata": "importlib_metadata",
    "importlib-resources": "importlib_resources",
}
SITE_PACKAGES = "site-packages"
#: The runtime's Python ABI tag (`cp314`).
PYTHON_ABI = "cp{}{}".format(*PYTHON_VERSION)
#: Where a compiled (not noarch) package puts its modules.
RUNTIME_SITE_PACKAGES = "lib/python{}.{}/site-packages".format(*PYTHON_VERSION)
#: The tags of wheels compiled for the runtime (PEP 783), as pip ranks them for its CPython: its
#: own ABI, the stable ABI (abi3) of 3.2 and later, or no Python ABI; for its platform only.
RUNTIME_TAGS = frozenset(
    tag
    for tags in (
        cpython_tags(PYTHON_VERSION, [PYTHON_ABI], [WHEEL_PLATFORM]),
        compatible_tags(PYTHON_VERSION, PYTHON_ABI, [WHEEL_PLATFORM]),
    )
    for tag in tags
    if tag.platform == WHEEL_PLATFORM
)


def _abi_depends() -> tuple[str, str]:
    """The pins the runtime's run_exports give compiled recipes, for its Python and ABI."""
    year, release = (int(part) for part in PYODIDE_ABI.split("_"))
    python = "{}.{}".format(*PYTHON_VERSION)
    return (
        f"python_abi {python}.* *_{PYTHON_ABI}",
        f"pyodide-abi >={year}.{release},<{year}.{release + 1}.0a0",
    )


#: What a package converted from a compiled wheel depends on besides python
#: (`python_abi 3.14.* *_cp314`, `pyodide-abi >=2026.0,<2026.1.0a0`): like a compiled recipe,
#: it only solves with the runtime it was built for.
RUNTIME_ABI_DEPENDS = _abi_depends()


def conda_name(pypi_name: str) -> str:
    """The conda package name for a PyPI project name; used for names and depends alike."""
    name = canonicalize_name(pypi_name)
    return CONDA_FORGE_NAMES.get(name, name)


def conda_spec(requirement: Requirement) -> str:
    """A PEP 508 requirement (markers already evaluated) as a conda MatchSpec string."""
    specifier = ",".join(sorted(str(s) for s in requirement.specifier))
    return f"{conda_name(requirement.name)} {specifier}".strip()


@dataclass(frozen=True)
class Wheel:
    """A wheel file and the metadata lite-env reads from it.

    `platform` is `any` for a pure-Python wheel, else the runtime's WHEEL_PLATFORM.
    """

    path: Path
    name: str
    version: str
    requires_python: str | None
    requires_dist: tuple[Requirement, ...]
    metadata: Message
    platform: str = "any"

    @property
    def conda_name(self) -> str:
        return conda_name(self.name)

    @property
    def subdir(self) -> str:
        """The channel subdir of its conda package: noarch, or emscripten-wasm32 if compiled."""
        return "noarch" if self.platform == "any" else PLATFORM


def read_wheel(path: Path) -> Wheel:
    """Read a wheel's METADATA; refuse wheels the runtime cannot load.

    Taken: pure-Python wheels, and PEP 783 wheels for exactly the runtime's ABI (RUNTIME_TAGS).
    """
    try:
        tags = parse_wheel_filename(path.name)[3]
    except InvalidWheelFilename as error:
        raise LiteEnvError(f"{path.name} is not a wheel file name", hint=str(error)) from None
    if all(tag.abi == "none" and tag.platform == "any" for tag in tags):
        platform = "any"
    elif tags & RUNTIME_TAGS:
        platform = WHEEL_PLATFORM
    else:
        built_for = ", ".join(sorted({f"{tag.abi}-{tag.platform}" for tag in tags}))
        raise LiteEnvError(
            f"{path.name} is built for {built_for}, not for this runtime's"
            f" {PYTHON_ABI}-{WHEEL_PLATFORM} (or abi3-{WHEEL_PLATFORM})",
            hint="lite-env converts pure-Python wheels and PEP 783 wheels for the runtime's ABI;"
            " other compiled packages need an emscripten-wasm32 recipe in recipes/",
        )
    with zipfile.ZipFile(path) as archive:
        dist_info = _dist_info(archive, path)
        metadata = BytesParser().parsebytes(archive.read(f"{dist_info}/METADATA"))
    return Wheel(
        path=path,
        name=metadata["Name"],
        version=metadata["Version"],
        requires_python=metadata.get("Requires-Python"),
        requires_dist=tuple(Requirement(r) for r in metadata.get_all("Requires-Dist") or ()),
        metadata=metadata,
        platform=platform,
    )


def convert_wheel(wheel: Wheel, out_dir: Path, depends: Sequence[str]) -> Path:
    """Write `wheel` as a .conda into out_dir and return the package's path.

    A package file that already exists is kept as it is: published files never change.

    Args:
        wheel: the wheel to convert.
        out_dir: the channel's folder for `wheel.subdir` (`noarch/` for a pure wheel).
        depends: the package's conda dependencies (markers already evaluated for Pyodide).

    A pure wheel follows conda's noarch python convention: the wheel's modules go under
    `site-packages/`, `.data/data/` under the prefix root, scripts under `python-scripts/`;
    console scripts become link.json entry points. A compiled wheel becomes an
    emscripten-wasm32 package pinned to the runtime's ABI (RUNTIME_ABI_DEPENDS), its modules
    under `lib/python3.14/site-packages/`, scripts under `bin/`. The dist-info says
    INSTALLER=conda and its RECORD is rewritten to match.
    """
    compiled = wheel.subdir != "noarch"
    python = (
        f"python {wheel.requires_python.replace(' ', '')}" if wheel.requires_python else "python"
    )
    depends = sorted({python, *depends, *(RUNTIME_ABI_DEPENDS if compiled else ())})
    digest = hashlib.sha256("\n".join(depends).encode()).hexdigest()
    build = f"{PYTHON_ABI.replace('cp', 'py')}h{digest[:7]}_0" if compiled else f"pyh{digest[:7]}_0"
    existing = out_dir / f"{wheel.conda_name}-{wheel.version}-{build}.conda"
    if existing.exists():
        return existing
    site = RUNTIME_SITE_PACKAGES if compiled else SITE_PACKAGES
    with zipfile.ZipFile(wheel.path) as archive:
        dist_info = _dist_info(archive, wheel.path)
        files, mtime = _payload(archive, dist_info, site)
        entry_points = _entry_points(archive, dist_info)
    index = {
        "name": wheel.conda_name,
        "version": wheel.version,
        "build": build,
        "build_number": 0,
        "depends": depends,
        "license": _license(wheel.metadata),
        "subdir": wheel.subdir,
        "timestamp": mtime * 1000,
    }
    link = None
    if not compiled:
        index["noarch"] = "python"
        link = {
            "noarch": {"type": "python", "entry_points": entry_points},
            "package_metadata_version": 1,
        }
    about = {
        "summary": wheel.metadata.get("Summary", ""),
        "license": index["license"],
        "home": _home(wheel.metadata),
        "extra": {"source": wheel.path.name},
    }
    return write_conda(out_dir, index, files, link=link, about=about)


def _dist_info(archive: zipfile.ZipFile, path: Path) -> str:
    names = {n.split("/")[0] for n in archive.namelist() if n.split("/")[0].endswith(".dist-info")}
    if len(names) != 1:
        raise LiteEnvError(f"{path.name}: expected one .dist-info folder, found {len(names)}")
    return names.pop()


def _payload(archive: zipfile.ZipFile, dist_info: str, site: str) -> tuple[list[PackageFile], int]:
    data_dir = dist_info.removesuffix(".dist-info") + ".data"
    files, newest = [], 0
    for member in archive.infolist():
        if member.is_dir() or member.filename.endswith("/RECORD"):
            continue
        target = _target(member.filename, data_dir, site)
        if target is None:
            continue
        mode = 0o755 if (member.external_attr >> 16) & 0o111 else 0o644
        data = b"conda\n" if member.filename == f"{dist_info}/INSTALLER" else archive.read(member)
        files.append(PackageFile(target, data, mode))
        newest = max(newest, int(_zip_time(member)))
    if f"{site}/{dist_info}/INSTALLER" not in {f.path for f in files}:
        files.append(PackageFile(f"{site}/{dist_info}/INSTALLER", b"conda\n"))
    files.append(_record(files, dist_info, site))
    return files, newest


def _target(name: str, data_dir: str, site: str) -> str | None:
    """Where a wheel member goes in the conda package (modules under `site`), or None."""
    if ".." in name.split("/") or name.startswith("/"):
        raise LiteEnvError(f"unsafe path in wheel: {name!r}")
    if not name.startswith(data_dir + "/"):
        return f"{site}/{name}"
    scheme, _, rest = name[len(data_dir) + 1 :].partition("/")
    return {
        "purelib": f"{site}/{rest}",
        "platlib": f"{site}/{rest}",
        "data": rest,
        "scripts": f"python-scripts/{rest}" if site == SITE_PACKAGES else f"bin/{rest}",
    }.get(scheme)


def _record(files: list[PackageFile], dist_info: str, site: str) -> PackageFile:
    rows = []
    for file in sorted(files, key=lambda f: f.path):
        if not file.path.startswith(f"{site}/"):
            continue
        digest = base64.urlsafe_b64encode(hashlib.sha256(file.data).digest()).rstrip(b"=").decode()
        rows.append(f"{file.path[len(site) + 1 :]},sha256={digest},{len(file.data)}\n")
    rows.append(f"{dist_info}/RECORD,,\n")
    return PackageFile(f"{site}/{dist_info}/RECORD", "".join(rows).encode())


def _entry_points(archive: zipfile.ZipFile, dist_info: str) -> list[str]:
    try:
        text = archive.read(f"{dist_info}/entry_points.txt").decode()
    except KeyError:
        return []
    parser = ConfigParser(delimiters=("=",), interpolation=None)
    parser.optionxform = str
    parser.read_string(text)
    return sorted(
        f"{name} = {target.strip()}"
        for section in ("console_scripts", "gui_scripts")
        if parser.has_section(section)
        for name, target in parser.items(section)
    )


def _license(metadata: Message) -> str:
    # str(): a header with non-ASCII bytes parses as an email.header.Header (jupyterlab_widgets)
    license_text = str(metadata.get("License-Expression") or metadata.get("License") or "")
    if license_text and "\n" not in license_text and len(license_text) < 80:
        return license_text
    classifiers = [c for c in metadata.get_all("Classifier") or () if c.startswith("License ::")]
    return classifiers[0].split(" :: ")[-1] if classifiers else "unknown"


def _home(metadata: Message) -> str:
    if metadata.get("Home-page"):
        return metadata["Home-page"]
    for url in metadata.get_all("Project-URL") or ():
        label, _, link = url.partition(",")
        if re.fullmatch(r"\s*(home|homepage|source|repository)\s*", label, re.IGNORECASE):
            return link.strip()
    return ""


def _zip_time(member: zipfile.ZipInfo) -> float:
    return calendar.timegm((*member.date_time, 0, 0, 0))
