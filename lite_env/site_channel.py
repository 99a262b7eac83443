"""`%conda install` in a site's kernel: the channel the site carries (the packages the build
solved against and their repodata) or the hosted channel it points at, the installed set, the
solver (mambajs) and `%conda` itself."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import conda_package_streaming
from rattler import RepoDataRecord

from lite_env.archive import canonical_members
from lite_env.errors import LiteEnvError
from lite_env.fetch import fetch_packages
from lite_env.files import read_file_out, read_json, write_atomically
from lite_env.platform import SUBDIRS
from lite_env.pyodide_node import PROGRAMS
from lite_env.solve import solve
from lite_env.spec import EnvSpec
from lite_env.verify import verify_package

#: The site's channel folder, and each environment's installed set (beside its image).
CHANNEL_DIR = Path("channel")
INSTALLED_DIR = Path("static") / "lite-env"
INSTALLED = "installed.json"
#: The solver's package in the channel, and its one file the kernel imports.
SOLVER_PACKAGE = "mambajs"
SOLVER_FILE = "share/mambajs/mambajs.mjs"
#: The kernel's `%conda` (lite_env/conda.mjs), written beside the loader.
CONDA_MODULE = Path(__file__).with_name("conda.mjs")
#: The lite_env modules `%conda` runs in the kernel: verify (the package check) and its imports.
CONDA_LITE_ENV_MODULES = ("__init__", "archive", "errors", "files", "platform", "verify")
#: The keys of a repodata.json the kernel's solver reads.
REPODATA_KEYS = ("packages", "packages.conda")


@dataclass(frozen=True)
class ChannelSource:
    """Where a kernel's `%conda install` takes packages from, and the lock's records (the
    installed set).

    Attributes:
        folders: the channel folders the build solved against, in priority order: the site
            carries them (empty for a hosted channel).
        installed: the lock's records.
        hosted: the URL of the hosted channel the kernel reads instead, if any.
        solver_package: the hosted channel's mambajs package, fetched and verified.
    """

    folders: tuple[Path, ...]
    installed: tuple[RepoDataRecord, ...]
    hosted: str | None = None
    solver_package: Path | None = None


def channel_source(
    spec: EnvSpec, installed: Sequence[RepoDataRecord], *, cache_dir: Path
) -> ChannelSource:
    """The environment's channels for `%conda install`: its folders (the site carries them),
    or its one hosted channel (the kernel reads it; its mambajs package is fetched for the site).

    Raises LiteEnvError for channels that are both folders and URLs, several hosted channels,
    or a hosted channel without mambajs.
    """
    remote = [channel for channel in spec.channels if channel.local_path is None]
    if not remote:
        return ChannelSource(tuple(c.local_path for c in spec.channels), tuple(installed))
    if len(spec.channels) > 1:
        raise LiteEnvError(
            "`%conda install` reads either channel folders the site carries or one hosted"
            f" channel, not {', '.join(c.entry for c in spec.channels)}",
            hint="name one hosted channel, or local copies of the channels",
        )
    url = remote[0].url.rstrip("/")
    _check_public(url, spec)
    solver = replace(spec, dependencies=(SOLVER_PACKAGE,), pip=(), pip_hashes=())
    records = solve(solver, cache_dir=cache_dir)
    [record] = [r for r in records if r.name.normalized == SOLVER_PACKAGE]
    [fetched] = fetch_packages([record], cache_dir=cache_dir)
    return ChannelSource((), tuple(installed), url, Path(url2pathname(urlparse(fetched.url).path)))


def _check_public(url: str, spec: EnvSpec) -> None:
    """Refuse a hosted channel URL that would publish a secret in the site (a user, password
    or `/t/<token>/`) or let any network on the way choose the kernel's packages (plain http
    off this machine: the sha256 checked come from the same connection)."""
    parsed = urlparse(url)
    if parsed.username or parsed.password or "/t/" in f"{parsed.path}/":
        raise LiteEnvError(
            f"{spec.path}: the hosted channel's URL holds credentials, which the site would"
            " publish to every student",
            hint="carry a local copy of the channel in the site instead (a folder)",
        )
    if parsed.scheme != "https" and parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise LiteEnvError(
            f"{spec.path}: a kernel reads a hosted channel over https only ({url})",
            hint="serve the channel over https, or carry it in the site",
        )


@dataclass(frozen=True)
class SiteChannel:
    """A channel written into a site: its folder, package count and its mambajs package."""

    folder: Path
    packages: int
    solver_package: Path


def add_conda(
    site: Path,
    source: ChannelSource,
    loader_dir: Path,
    *,
    installed: str = INSTALLED,
    copy_channel: bool = True,
) -> dict:
    """Put what `%conda` needs into the site: the channel (add_channel, for channel folders,
    unless `copy_channel` is false: another environment of the site wrote it), the
    environment's installed set (site/static/lite-env/`installed`), its solver (named by its
    content: environments of one site may take theirs from different channels) and `%conda`
    (conda.mjs with its Python), beside the loader in site/`loader_dir`; return the loader's
    options for them."""
    if copy_channel and not source.hosted:
        shutil.rmtree(site / CHANNEL_DIR, ignore_errors=True)
        add_channel(site, source)
    package = source.solver_package if source.hosted else _channel_solver(site / CHANNEL_DIR)
    solver = _write_solver(package, site / loader_dir)
    write_atomically(site / INSTALLED_DIR / installed, _json(installed_set(source.installed)))
    text = CONDA_MODULE.read_text().replace('"@python@"', json.dumps(conda_python()))
    write_atomically(site / loader_dir / CONDA_MODULE.name, text)
    channel = source.hosted or f"./{CHANNEL_DIR.as_posix()}/"
    return {
        "liteEnvCondaURL": f"./{(loader_dir / CONDA_MODULE.name).as_posix()}",
        "liteEnvChannelURL": channel,
        "liteEnvInstalledURL": f"./{(INSTALLED_DIR / installed).as_posix()}",
        "liteEnvSolverURL": f"./{(loader_dir / solver.name).as_posix()}",
    }


def conda_python() -> dict[str, str]:
    """The Python the kernel's `%conda` runs, by path under site-packages: its module and the
    modules of lite_env (the build's own package checks) and conda_package_streaming it uses."""
    package = Path(__file__).parent
    streaming = Path(conda_package_streaming.__file__).parent
    sources = {"_lite_env_conda.py": PROGRAMS / "conda_magic.py"}
    for name in CONDA_LITE_ENV_MODULES:
        sources[f"lite_env/{name}.py"] = package / f"{name}.py"
    for name in ("__init__", "package_streaming"):
        sources[f"conda_package_streaming/{name}.py"] = streaming / f"{name}.py"
    return {path: source.read_text() for path, source in sources.items()}


def add_channel(site: Path, source: ChannelSource) -> SiteChannel:
    """Copy every package of the channel folders of `source` (emscripten-wasm32 and noarch)
    into site/channel/<subdir>/ with one repodata.json per subdir (the first channel wins a
    file name, as the solver's priority does). Byte-reproducible: the same channels and lock
    give the same files.

    The whole channel is carried, not the closure of one request: the kernel can then install
    anything the build could have, and the site needs no second solve to know what to carry.
    Raises LiteEnvError for a channel that is not a folder, a package whose bytes do not match
    its record, or a channel without the mambajs package.
    """
    folder = site / CHANNEL_DIR
    count = 0
    for subdir in SUBDIRS:
        merged: dict[str, dict] = {key: {} for key in REPODATA_KEYS}
        (folder / subdir).mkdir(parents=True, exist_ok=True)
        for channel in source.folders:
            repodata = channel / subdir / "repodata.json"
            if not repodata.is_file():
                continue
            document = read_json(repodata, what="channel repodata")
            for key in REPODATA_KEYS:
                for name, record in sorted((document.get(key) or {}).items()):
                    if name in merged[key] or not _package_name(name):
                        continue
                    data = read_file_out(channel / subdir / name)
                    if hashlib.sha256(data).hexdigest() != record.get("sha256"):
                        raise LiteEnvError(
                            f"{channel / subdir / name}: its bytes do not match the channel's"
                            " record",
                            hint="rebuild or re-index the channel",
                        )
                    (folder / subdir / name).write_bytes(data)
                    merged[key][name] = record
                    count += 1
        document = {"info": {"subdir": subdir}, "repodata_version": 1, **merged}
        write_atomically(folder / subdir / "repodata.json", _json(document))
    return SiteChannel(folder, count, _channel_solver(folder))


def installed_set(records: Sequence[RepoDataRecord]) -> list[dict]:
    """The installed packages as the kernel's `%conda` reads them, sorted by name."""
    return [
        {
            "file": record.file_name,
            "name": record.name.normalized,
            "version": str(record.version),
            "build": str(record.build),
            "subdir": record.subdir,
            "sha256": record.sha256.hex() if record.sha256 else None,
            "depends": list(record.depends),
        }
        for record in sorted(records, key=lambda r: r.name.normalized)
    ]


def _channel_solver(folder: Path) -> Path:
    """The mambajs package (the last by file name) of the site's channel."""
    candidates = sorted(folder.glob(f"*/{SOLVER_PACKAGE}-*.conda"), key=lambda path: path.name)
    if not candidates:
        raise LiteEnvError(
            "the channel has no mambajs package: `%conda install` in the kernel needs it",
            hint="build the channel from lite-env's recipes (recipes/mambajs) or leave out"
            " --channel-in-site",
        )
    return candidates[-1]


def _write_solver(package: Path, solver_dir: Path) -> Path:
    """Write the module of a mambajs package into `solver_dir` as mambajs-<sha256>.mjs, once
    the package is verified."""
    problems = verify_package(package)
    if problems:
        raise LiteEnvError(f"{package.name}: refused", hint="\n".join(problems))
    for tar, member in canonical_members(package):
        if member.name == SOLVER_FILE and member.isfile():
            module = tar.extractfile(member).read()
            name = f"mambajs-{hashlib.sha256(module).hexdigest()[:16]}.mjs"
            solver_dir.mkdir(parents=True, exist_ok=True)
            return write_atomically(solver_dir / name, module)
    raise LiteEnvError(f"{package.name}: holds no {SOLVER_FILE}")


def _package_name(name: str) -> bool:
    """Whether a repodata key is a plain package file name (never a path)."""
    return "/" not in name and "\\" not in name and name.endswith((".conda", ".tar.bz2"))


def _json(document: object) -> str:
    return json.dumps(document, indent=1, sort_keys=True) + "\n"
