"""Convert a pure-Python wheel into a `noarch: python` conda package, reproducibly."""

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
from packaging.utils import canonicalize_name

from lite_env.conda_file import PackageFile, write_conda
from lite_env.errors import LiteEnvError

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
    """A wheel file and the metadata lite-env reads from it."""

    path: Path
    name: str
    version: str
    requires_python: str | None
    requires_dist: tuple[Requirement, ...]
    metadata: Message

    @property
    def conda_name(self) -> str:
        return conda_name(self.name)


def read_wheel(path: Path) -> Wheel:
    """Read a wheel's METADATA; refuse wheels that are not pure Python."""
    tags = path.stem.split("-")[-3:]
    if len(tags) != 3 or tags[1] != "none" or tags[2] != "any":
        raise LiteEnvError(
            f"{path.name} is not a pure-Python wheel",
            hint="compiled packages need an emscripten-wasm32 recipe in recipes/",
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
    )


def convert_wheel(wheel: Wheel, out_dir: Path, depends: Sequence[str]) -> Path:
    """Write `wheel` as a noarch python .conda into out_dir and return the package's path.

    A package file that already exists is kept as it is: published files never change.

    Args:
        wheel: the wheel to convert.
        out_dir: the channel's `noarch/` folder.
        depends: the package's conda dependencies (markers already evaluated for Pyodide).

    Layout follows conda's noarch python convention: the wheel's modules go under
    `site-packages/`, `.data/data/` under the prefix root, scripts under `python-scripts/`;
    console scripts become link.json entry points. The dist-info says INSTALLER=conda and
    its RECORD is rewritten to match.
    """
    python = (
        f"python {wheel.requires_python.replace(' ', '')}" if wheel.requires_python else "python"
    )
    depends = sorted({python, *depends})
    digest = hashlib.sha256("\n".join(depends).encode()).hexdigest()
    build = f"pyh{digest[:7]}_0"
    existing = out_dir / f"{wheel.conda_name}-{wheel.version}-{build}.conda"
    if existing.exists():
        return existing
    with zipfile.ZipFile(wheel.path) as archive:
        dist_info = _dist_info(archive, wheel.path)
        files, mtime = _payload(archive, dist_info)
        entry_points = _entry_points(archive, dist_info)
    index = {
        "name": wheel.conda_name,
        "version": wheel.version,
        "build": build,
        "build_number": 0,
        "depends": depends,
        "license": _license(wheel.metadata),
        "noarch": "python",
        "subdir": "noarch",
        "timestamp": mtime * 1000,
    }
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


def _payload(archive: zipfile.ZipFile, dist_info: str) -> tuple[list[PackageFile], int]:
    data_dir = dist_info.removesuffix(".dist-info") + ".data"
    files, newest = [], 0
    for member in archive.infolist():
        if member.is_dir() or member.filename.endswith("/RECORD"):
            continue
        target = _target(member.filename, data_dir)
        if target is None:
            continue
        mode = 0o755 if (member.external_attr >> 16) & 0o111 else 0o644
        data = b"conda\n" if member.filename == f"{dist_info}/INSTALLER" else archive.read(member)
        files.append(PackageFile(target, data, mode))
        newest = max(newest, int(_zip_time(member)))
    if f"{SITE_PACKAGES}/{dist_info}/INSTALLER" not in {f.path for f in files}:
        files.append(PackageFile(f"{SITE_PACKAGES}/{dist_info}/INSTALLER", b"conda\n"))
    files.append(_record(files, dist_info))
    return files, newest


def _target(name: str, data_dir: str) -> str | None:
    """Where a wheel member goes in the conda package, or None to leave it out."""
    if ".." in name.split("/") or name.startswith("/"):
        raise LiteEnvError(f"unsafe path in wheel: {name!r}")
    if not name.startswith(data_dir + "/"):
        return f"{SITE_PACKAGES}/{name}"
    scheme, _, rest = name[len(data_dir) + 1 :].partition("/")
    return {
        "purelib": f"{SITE_PACKAGES}/{rest}",
        "platlib": f"{SITE_PACKAGES}/{rest}",
        "data": rest,
        "scripts": f"python-scripts/{rest}",
    }.get(scheme)


def _record(files: list[PackageFile], dist_info: str) -> PackageFile:
    rows = []
    for file in sorted(files, key=lambda f: f.path):
        if not file.path.startswith(f"{SITE_PACKAGES}/"):
            continue
        digest = base64.urlsafe_b64encode(hashlib.sha256(file.data).digest()).rstrip(b"=").decode()
        rows.append(f"{file.path[len(SITE_PACKAGES) + 1 :]},sha256={digest},{len(file.data)}\n")
    rows.append(f"{dist_info}/RECORD,,\n")
    return PackageFile(f"{SITE_PACKAGES}/{dist_info}/RECORD", "".join(rows).encode())


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
