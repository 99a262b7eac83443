"""Emit a JupyterLite site whose Pyodide kernel starts with the environment image mounted.

jupyterlite-core builds the apps; lite-env adds the runtime (from the environment's `python`
package, no CDN), its loader and the image under `static/`, and points the kernel at them in
`jupyter-lite.json`. A site of several environments has one kernel each (lite-env's kernels
extension, lite_env/labextension). The site is built beside the output folder and swapped in
when complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lite_env.early_start import EARLY_WORKERS, add_early_start
from lite_env.errors import LiteEnvError
from lite_env.extensions import LabExtension, copy_extension, site_extensions
from lite_env.files import read_file_out, read_json, sha256, site_path, write_atomically
from lite_env.kernel import (
    KERNEL_BOOTSTRAP,
    KERNEL_PLUGIN,
    KERNELS_PLUGIN,
    LOADER_IMPORTS,
)
from lite_env.options import BuildOptions
from lite_env.pack import Image
from lite_env.precompress import precompress
from lite_env.pyodide_lock import write_pyodide_lock
from lite_env.pyodide_node import PROGRAMS
from lite_env.site_channel import CHANNEL_DIR, ChannelSource, add_conda
from lite_env.snapshot import Snapshot

#: The runtime files a browser loads, from the `python` package's share/pyodide/.
RUNTIME_FILES = (
    "pyodide.mjs",
    "pyodide.asm.mjs",
    "pyodide.asm.wasm",
    "python_stdlib.zip",
    "pyodide-lock.json",
)
LOADER = Path(__file__).with_name("lite-env.mjs")
LOADER_NAME = "lite-env.mjs"
PYODIDE_DIR = Path("static") / "pyodide"
IMAGE_DIR = Path("static") / "lite-env"
#: A fixed date for jupyterlite-core's timestamps, so that two builds compare equal.
SOURCE_DATE_EPOCH = 1_700_000_000


@dataclass(frozen=True)
class Site:
    """A built site: its folder and the settings of each of its kernels, by kernel name."""

    folder: Path
    kernels: dict[str, dict]
    #: the JupyterLab extensions installed: the kernel's, then the environment's
    extensions: tuple[LabExtension, ...] = ()

    @property
    def kernel_settings(self) -> dict:
        """The first kernel's settings (the only one's, for a site of one environment)."""
        return next(iter(self.kernels.values()))


@dataclass(frozen=True)
class SiteEnvironment:
    """One environment of a site, as its kernel starts with it.

    Attributes:
        kernel: the kernel's name ("python" for a site's first environment).
        display_name: the kernel's name in the launcher and the kernel picker.
        image: the packed environment.
        runtime_dir: the Pyodide core files (the installed `python` package's share/pyodide).
        provides: the package names the image provides (conda and PyPI spellings).
        depends: each package's dependencies by name (for pyodide-lock.json).
        options: the environment's build options (`mode`, `allow_pypi`, `channel_in_site`).
        snapshot: a memory snapshot in the image folder, restored instead of a cold boot.
        channel: what the site's channel is made of, when `options.channel_in_site`.
    """

    kernel: str
    display_name: str
    image: Image
    runtime_dir: Path
    provides: Sequence[str]
    depends: Mapping[str, list[str]]
    options: BuildOptions
    snapshot: Snapshot | None = None
    channel: ChannelSource | None = None


def build_site(
    environments: Sequence[SiteEnvironment],
    output: Path,
    *,
    options: BuildOptions,
    extensions: Sequence[LabExtension] = (),
) -> Site:
    """Build the site into `output`, replacing what was there only once the build succeeded.

    Args:
        environments: one kernel each; the first is the site's default kernel, "python".
        output: the site folder.
        options: the site's options: `contents` (files or folders to ship: notebooks, data),
            `apps` (the JupyterLite apps kept),
            `early_start` (the default kernel's worker started by the pages, see
            lite_env.early_start) and `precompress` (a `.gz` beside each file that shrinks,
            see lite_env.precompress).
        extensions: the environments' JupyterLab extensions (extensions.environment_extensions);
            the site gets them and the kernel's, and none from the build machine's Python.
    """
    for environment in environments:
        check_kernel_packages(environment.provides)  # before the long jupyterlite build
    installed = site_extensions(
        extensions, ours=needs_kernels_extension(len(environments), options)
    )
    output = output.absolute()
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        _jupyter_lite_build(staging / "site", options, installed)
        site = add_environments(staging / "site", environments)
        if starts_early(options):
            add_early_start(staging / "site", site.kernel_settings, IMAGE_DIR)
        if options.precompress:
            # mambajs 0.21.6 panics ("time not implemented on this platform") on a repodata.json
            # sent with Content-Encoding: the channel's files are served as they are
            precompress(staging / "site", leave_out=(CHANNEL_DIR,))
        _swap_in(staging / "site", output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Site(output, site.kernels, installed)


def starts_early(options: BuildOptions) -> bool:
    """Whether a site built with the default environment's `options` starts its kernel with
    the page (which needs lite-env's loader)."""
    return options.early_start and options.mode == "image"


def needs_kernels_extension(environments: int, options: BuildOptions) -> bool:
    """Whether a site of this many environments, built with the default one's `options`,
    installs lite-env's kernels extension: for a kernel each, or to start one early."""
    return environments > 1 or starts_early(options)


def check_kernel_packages(provides: Sequence[str]) -> None:
    """Refuse an environment without the packages the kernel would otherwise download."""
    missing = [name for name in KERNEL_BOOTSTRAP if name not in provides]
    if missing:
        raise LiteEnvError(
            f"the environment lacks packages the Pyodide kernel needs: {', '.join(missing)}",
            hint="add them to the environment's dependencies (they are in the default channel)",
        )


def add_environments(site: Path, environments: Sequence[SiteEnvironment]) -> Site:
    """Put each environment's runtime, loader and image into a built JupyterLite site and
    declare its kernel in the site's jupyter-lite.json.

    One environment configures the Pyodide kernel's own plugin. Several are each a kernel of
    lite-env's kernels extension (which the site must have, see site_extensions), and the
    Pyodide kernel's plugin is disabled. Images share one folder, where a chunk that several
    environments hold is stored once (chunks are named by their content); environments with
    the same runtime share it; environments that carry their channel share one (they must
    name the same channels); each has its own installed set.
    """
    for environment in environments:
        check_kernel_packages(environment.provides)
    if len(environments) > 1 and any(e.options.mode != "image" for e in environments):
        raise LiteEnvError("a site of several environments needs --mode image")
    shutil.rmtree(site / IMAGE_DIR, ignore_errors=True)
    shutil.rmtree(site / CHANNEL_DIR, ignore_errors=True)
    runtimes: dict[str, Path] = {}
    carried: tuple[Path, ...] | None = None
    kernels = {}
    for index, environment in enumerate(environments):
        suffix = "" if index == 0 else f"-{environment.kernel}"
        runtime = _runtime_folder(site, environment.runtime_dir, runtimes, suffix)
        settings = _add_environment(site, environment, runtime, lock_name=f"pyodide-lock{suffix}")
        channel = environment.channel
        if channel is not None and environment.options.channel_in_site:
            carries = not channel.hosted
            if carries and carried is not None and carried != channel.folders:
                raise LiteEnvError(
                    "environments that carry their channel into one site must name the same"
                    f" channels ({environment.kernel} differs)",
                    hint="carry the channel for one of them only (`lite-env: channel-in-site`)",
                )
            settings["loadPyodideOptions"] |= add_conda(
                site,
                channel,
                runtime,
                installed=f"installed{suffix}.json",
                copy_channel=carried is None,
            )
            if carries:
                carried = channel.folders
        kernels[environment.kernel] = settings
    _declare_kernels(site / "jupyter-lite.json", environments, kernels)
    return Site(site, kernels)


def _runtime_folder(site: Path, runtime_dir: Path, runtimes: dict[str, Path], suffix: str) -> Path:
    """The site folder (relative) of an environment's runtime: shared by environments with the
    same runtime files, written (with the loader) the first time."""
    digest = hashlib.sha256()
    for name in RUNTIME_FILES[:-1]:  # pyodide-lock.json is each environment's own
        digest.update(sha256(runtime_dir / name).encode())
    key = digest.hexdigest()
    if key not in runtimes:
        folder = PYODIDE_DIR.with_name(PYODIDE_DIR.name + suffix)
        (site / folder).mkdir(parents=True, exist_ok=True)
        for name in RUNTIME_FILES:
            (site / folder / name).write_bytes(read_file_out(runtime_dir / name))
        write_loader(site / folder)
        runtimes[key] = folder
    return runtimes[key]


def _add_environment(
    site: Path, environment: SiteEnvironment, runtime: Path, *, lock_name: str
) -> dict:
    """Copy an environment's image into the site and write its pyodide-lock.json; return its
    kernel's settings."""
    image, mode = environment.image, environment.options.mode
    if environment.options.channel_in_site and (mode != "image" or environment.channel is None):
        raise LiteEnvError(
            "--channel-in-site needs lite-env's loader (mode image) and the environment's channels",
            hint="build with --mode image",
        )
    if mode == "image":
        shutil.copytree(image.folder, site / IMAGE_DIR, dirs_exist_ok=True)
    lock = write_pyodide_lock(
        image,
        environment.runtime_dir / "pyodide-lock.json",
        site / IMAGE_DIR,
        depends=dict(environment.depends),
        mode=mode,
        name=f"{lock_name}.json",
    )
    lock_url = f"./{lock.relative_to(site).as_posix()}"
    if mode == "image":
        settings = {
            "pyodideUrl": f"./{(runtime / LOADER_NAME).as_posix()}",
            "loadPyodideOptions": {
                "lockFileURL": lock_url,
                "packages": list(KERNEL_BOOTSTRAP),
                "liteEnvManifestURL": f"./{(IMAGE_DIR / image.manifest).as_posix()}",
                "liteEnvProvides": sorted(set(environment.provides)),
                "liteEnvImports": list(LOADER_IMPORTS),
            },
        }
        snapshot = environment.snapshot
        if snapshot is not None:
            settings["loadPyodideOptions"] |= {
                "liteEnvSnapshotURL": f"./{(IMAGE_DIR / snapshot.file).as_posix()}",
                "liteEnvSnapshotSha256": snapshot.sha256,
            }
    else:
        packages = sorted(json.loads(lock.read_text())["packages"])
        settings = {
            "pyodideUrl": f"./{(runtime / 'pyodide.mjs').as_posix()}",
            "loadPyodideOptions": {"lockFileURL": lock_url, "packages": packages},
        }
    settings["disablePyPIFallback"] = not environment.options.allow_pypi
    return settings


def write_loader(folder: Path) -> Path:
    """Write lite-env's loader into `folder` (beside pyodide.mjs), with the lazy finder
    (lite_env/in_pyodide/lazy_finder.py) in place of its placeholder."""
    finder = (PROGRAMS / "lazy_finder.py").read_text() + "\nmain()\ndel LiteEnvLazyChunks, main\n"
    text = LOADER.read_text().replace('"@lazy_finder@"', json.dumps(finder))
    return write_atomically(folder / LOADER_NAME, text)


def _jupyter_lite_build(
    output: Path, options: BuildOptions, extensions: Sequence[LabExtension]
) -> None:
    with tempfile.TemporaryDirectory() as lite_dir:
        # federated extensions: exactly these, none from sys.prefix (the build venv); what
        # jupyterlite-core copies into the site and registers is lite-env's own copy (made as
        # the addon's, never following a link), so a link in a prefix leads nowhere
        copies = Path(lite_dir) / "labextensions"
        config = {
            "LiteBuildConfig": {
                "ignore_sys_prefix": ["federated_extensions"],
                "federated_extensions": [str(copy_extension(e, copies)) for e in extensions],
            }
        }
        if options.apps:
            config["LiteBuildConfig"] |= {
                "apps": list(options.apps),
                "no_unused_shared_packages": True,
            }
        (Path(lite_dir) / "jupyter_lite_config.json").write_text(json.dumps(config))
        command = [
            sys.executable, "-m", "jupyterlite_core", "build",
            "--lite-dir", lite_dir, "--output-dir", str(output), "--no-sourcemaps",
        ]  # fmt: skip
        for path in options.contents:
            command += ["--contents", str(path.absolute())]
        env = {**os.environ, "SOURCE_DATE_EPOCH": str(SOURCE_DATE_EPOCH)}
        done = subprocess.run(command, capture_output=True, text=True, cwd=lite_dir, env=env)
    if done.returncode != 0:
        raise LiteEnvError("jupyter lite build failed", hint=(done.stdout + done.stderr)[-3000:])
    # browsers ask for /favicon.ico, which jupyterlite-core leaves in lab/ only (a 404 each load)
    if (output / "lab" / "favicon.ico").exists():
        shutil.copyfile(output / "lab" / "favicon.ico", output / "favicon.ico")


def site_kernels(site: Path) -> dict[str, dict]:
    """The settings of each Pyodide kernel of a built site, by kernel name: the Pyodide kernel
    plugin's one ("python"), or the kernels of lite-env's kernels extension.

    Raises LiteEnvError when the folder is not a built site or its kernel has no settings.
    """
    if not (site / "jupyter-lite.json").is_file():
        raise LiteEnvError(
            f"{site}: not a built site (no jupyter-lite.json)",
            hint="build one with `lite-env build`",
        )
    keys = ("jupyter-config-data", "litePluginSettings")
    plugins = read_json(site / "jupyter-lite.json", what="site configuration", keys=keys)
    ours = plugins.get(KERNELS_PLUGIN) if isinstance(plugins, dict) else None
    kernels = ours.get("kernels") if isinstance(ours, dict) else None
    if kernels:
        if not isinstance(kernels, list) or not all(_named(kernel) for kernel in kernels):
            raise LiteEnvError(f"{site / 'jupyter-lite.json'}: its kernels have no names")
        return {kernel["name"]: kernel for kernel in kernels}
    keys = (*keys, KERNEL_PLUGIN)
    settings = read_json(site / "jupyter-lite.json", what="site configuration", keys=keys)
    if not _named({**settings, "name": "python"} if isinstance(settings, dict) else None):
        raise LiteEnvError(f"{site / 'jupyter-lite.json'}: the kernel's settings are not a mapping")
    return {"python": settings}


def _named(kernel: object) -> bool:
    return (
        isinstance(kernel, dict)
        and isinstance(kernel.get("name"), str)
        and isinstance(kernel.get("loadPyodideOptions", {}), dict)
    )


def kernel_settings(site: Path) -> dict:
    """The settings of a built site's first (default) kernel; see site_kernels."""
    return next(iter(site_kernels(site).values()))


def content_addressed(site: Path) -> frozenset[str]:
    """The files of a built site that are named by their content (the image's manifest,
    chunks and snapshot, the early kernel worker), as paths relative to the site: a server
    may let browsers keep them.

    Raises LiteEnvError when the folder is not a built site or its manifest is unreadable.
    """
    named = [p.relative_to(site).as_posix() for p in (site / IMAGE_DIR).glob(EARLY_WORKERS)]
    for settings in site_kernels(site).values():
        options = settings.get("loadPyodideOptions", {})
        named.append(options.get("liteEnvSnapshotURL"))
        if options.get("liteEnvManifestURL"):
            manifest = site / site_path(options["liteEnvManifestURL"])
            chunks = read_json(manifest, what="image manifest", keys=("chunks",))
            folder = Path(options["liteEnvManifestURL"]).parent
            named.append(options["liteEnvManifestURL"])
            files = [c["file"] for c in chunks if isinstance(c.get("file"), str)]
            named += [(folder / file).as_posix() for file in files]
    return frozenset(os.path.normpath(url).replace(os.sep, "/") for url in named if url)


def _declare_kernels(
    config: Path, environments: Sequence[SiteEnvironment], kernels: Mapping[str, dict]
) -> None:
    """Write the kernels' settings into jupyter-lite.json: the Pyodide kernel plugin's for one
    environment; for several, lite-env's kernels plugin's (each kernel with the piplite
    settings jupyterlite-pyodide-kernel's addon wrote), the Pyodide kernel plugin disabled."""
    document = read_json(config, what="site configuration", keys=())
    if not isinstance(document, dict) or not isinstance(
        document.setdefault("jupyter-config-data", {}), dict
    ):
        raise LiteEnvError(f"{config}: `jupyter-config-data` is not a mapping")
    data = document["jupyter-config-data"]
    plugins = data.setdefault("litePluginSettings", {})
    stock = plugins.setdefault(KERNEL_PLUGIN, {})
    if len(environments) == 1:
        stock.update(next(iter(kernels.values())))
    else:
        plugins[KERNELS_PLUGIN] = {
            "kernels": [
                {
                    **stock,
                    **kernels[e.kernel],
                    "name": e.kernel,
                    "display_name": e.display_name,
                }
                for e in environments
            ]
        }
        disabled = data.setdefault("disabledExtensions", [])
        if KERNEL_PLUGIN not in disabled:
            disabled.append(KERNEL_PLUGIN)
    config.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")


def _swap_in(site: Path, output: Path) -> None:
    """Replace `output` with `site` so that a failure at any point leaves one of them whole."""
    if output.exists():
        retired = site.with_name("retired")
        output.rename(retired)
        site.rename(output)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        site.rename(output)
