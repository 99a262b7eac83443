"""Emit a JupyterLite site whose Pyodide kernel starts with the environment image mounted.

jupyterlite-core builds the apps; lite-env adds the runtime (from the environment's `python`
package, no CDN), its loader and the image under `static/`, and points the kernel at them in
`jupyter-lite.json`. The site is built beside the output folder and swapped in when complete.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lite_env.errors import LiteEnvError
from lite_env.extensions import LabExtension, copy_extension, site_extensions
from lite_env.files import read_file_out, read_json, write_atomically
from lite_env.kernel import KERNEL_BOOTSTRAP, KERNEL_IMPORTS, KERNEL_PLUGIN, snapshot_modules
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
    """A built site: its folder and the settings its kernel was given."""

    folder: Path
    kernel_settings: dict
    #: the JupyterLab extensions installed: the kernel's, then the environment's
    extensions: tuple[LabExtension, ...] = ()


def build_site(
    image: Image,
    runtime_dir: Path,
    output: Path,
    *,
    provides: Sequence[str],
    depends: Mapping[str, list[str]],
    options: BuildOptions,
    snapshot: Snapshot | None = None,
    extensions: Sequence[LabExtension] = (),
    channel: ChannelSource | None = None,
) -> Site:
    """Build the site into `output`, replacing what was there only once the build succeeded.

    Args:
        image: the packed environment.
        runtime_dir: the Pyodide core files (the installed `python` package's share/pyodide).
        output: the site folder.
        provides: the package names the image provides (conda and PyPI spellings).
        depends: each package's dependencies by name (for pyodide-lock.json).
        snapshot: a memory snapshot in the image folder, restored instead of a cold boot.
        extensions: the environment's JupyterLab extensions (extensions.environment_extensions);
            the site gets them and the kernel's, and none from the build machine's Python.
        channel: what the site's channel is made of, when `options.channel_in_site`.
        options: the build's options; the site uses `contents` (files or folders to ship:
            notebooks, data), `mode`, `allow_pypi` (`%pip install` may fall back to PyPI,
            a request outside the site) and `precompress` (a `.gz` beside each file that
            shrinks, see lite_env.precompress).
    """
    check_kernel_packages(provides)
    installed = site_extensions(extensions)
    output = output.absolute()
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        _jupyter_lite_build(staging / "site", options.contents, installed)
        site = add_environment(
            staging / "site",
            image,
            runtime_dir,
            provides=provides,
            depends=depends,
            snapshot=snapshot,
            options=options,
            channel=channel,
        )
        if options.precompress:
            # mambajs 0.21.6 panics ("time not implemented on this platform") on a repodata.json
            # sent with Content-Encoding: the channel's files are served as they are
            precompress(staging / "site", leave_out=(CHANNEL_DIR,))
        _swap_in(staging / "site", output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Site(output, site.kernel_settings, installed)


def check_kernel_packages(provides: Sequence[str]) -> None:
    """Refuse an environment without the packages the kernel would otherwise download."""
    missing = [name for name in KERNEL_BOOTSTRAP if name not in provides]
    if missing:
        raise LiteEnvError(
            f"the environment lacks packages the Pyodide kernel needs: {', '.join(missing)}",
            hint="add them to the environment's dependencies (they are in the default channel)",
        )


def add_environment(
    site: Path,
    image: Image,
    runtime_dir: Path,
    *,
    provides: Sequence[str],
    depends: Mapping[str, list[str]],
    options: BuildOptions,
    snapshot: Snapshot | None = None,
    channel: ChannelSource | None = None,
) -> Site:
    """Put the runtime, the loader and the image into a built JupyterLite site and point the
    kernel at them in its jupyter-lite.json (see build_site for the arguments)."""
    check_kernel_packages(provides)
    mode = options.mode
    if options.channel_in_site and (mode != "image" or channel is None):
        raise LiteEnvError(
            "--channel-in-site needs lite-env's loader (mode image) and the environment's channels",
            hint="build with --mode image",
        )
    shutil.rmtree(site / IMAGE_DIR, ignore_errors=True)
    if mode == "image":
        shutil.copytree(image.folder, site / IMAGE_DIR)
    lock = write_pyodide_lock(
        image, runtime_dir / "pyodide-lock.json", site / IMAGE_DIR, depends=dict(depends), mode=mode
    )
    (site / PYODIDE_DIR).mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_FILES:
        (site / PYODIDE_DIR / name).write_bytes(read_file_out(runtime_dir / name))
    lock_url = f"./{lock.relative_to(site).as_posix()}"
    if mode == "image":
        write_loader(site / PYODIDE_DIR)
        settings = {
            "pyodideUrl": f"./{(PYODIDE_DIR / LOADER_NAME).as_posix()}",
            "loadPyodideOptions": {
                "lockFileURL": lock_url,
                "packages": list(KERNEL_BOOTSTRAP),
                "liteEnvManifestURL": f"./{(IMAGE_DIR / image.manifest).as_posix()}",
                "liteEnvProvides": sorted(set(provides)),
                "liteEnvImports": snapshot_modules(KERNEL_IMPORTS),
            },
        }
        if snapshot is not None:
            settings["loadPyodideOptions"] |= {
                "liteEnvSnapshotURL": f"./{(IMAGE_DIR / snapshot.file).as_posix()}",
                "liteEnvSnapshotSha256": snapshot.sha256,
            }
        if channel is not None and options.channel_in_site:
            settings["loadPyodideOptions"] |= add_conda(site, channel, PYODIDE_DIR)
    else:
        packages = sorted(json.loads(lock.read_text())["packages"])
        settings = {
            "pyodideUrl": f"./{(PYODIDE_DIR / 'pyodide.mjs').as_posix()}",
            "loadPyodideOptions": {"lockFileURL": lock_url, "packages": packages},
        }
    settings["disablePyPIFallback"] = not options.allow_pypi
    _set_kernel_settings(site / "jupyter-lite.json", settings)
    return Site(site, settings)


def write_loader(folder: Path) -> Path:
    """Write lite-env's loader into `folder` (beside pyodide.mjs), with the lazy finder
    (lite_env/in_pyodide/lazy_finder.py) in place of its placeholder."""
    finder = (PROGRAMS / "lazy_finder.py").read_text() + "\nmain()\ndel LiteEnvLazyChunks, main\n"
    text = LOADER.read_text().replace('"@lazy_finder@"', json.dumps(finder))
    return write_atomically(folder / LOADER_NAME, text)


def _jupyter_lite_build(
    output: Path, contents: Sequence[Path], extensions: Sequence[LabExtension]
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
        (Path(lite_dir) / "jupyter_lite_config.json").write_text(json.dumps(config))
        command = [
            sys.executable, "-m", "jupyterlite_core", "build",
            "--lite-dir", lite_dir, "--output-dir", str(output), "--no-sourcemaps",
        ]  # fmt: skip
        for path in contents:
            command += ["--contents", str(path.absolute())]
        env = {**os.environ, "SOURCE_DATE_EPOCH": str(SOURCE_DATE_EPOCH)}
        done = subprocess.run(command, capture_output=True, text=True, cwd=lite_dir, env=env)
    if done.returncode != 0:
        raise LiteEnvError("jupyter lite build failed", hint=(done.stdout + done.stderr)[-3000:])
    # browsers ask for /favicon.ico, which jupyterlite-core leaves in lab/ only (a 404 each load)
    if (output / "lab" / "favicon.ico").exists():
        shutil.copyfile(output / "lab" / "favicon.ico", output / "favicon.ico")


def kernel_settings(site: Path) -> dict:
    """The Pyodide kernel's settings in a built site's jupyter-lite.json.

    Raises LiteEnvError when the folder is not a built site or its kernel has no settings.
    """
    if not (site / "jupyter-lite.json").is_file():
        raise LiteEnvError(
            f"{site}: not a built site (no jupyter-lite.json)",
            hint="build one with `lite-env build`",
        )
    keys = ("jupyter-config-data", "litePluginSettings", KERNEL_PLUGIN)
    return read_json(site / "jupyter-lite.json", what="site configuration", keys=keys)


def content_addressed(site: Path) -> frozenset[str]:
    """The files of a built site that are named by their content (the image's manifest,
    chunks and snapshot), as paths relative to the site: a server may let browsers keep them.

    Raises LiteEnvError when the folder is not a built site or its manifest is unreadable.
    """
    options = kernel_settings(site).get("loadPyodideOptions", {})
    named = [options.get("liteEnvSnapshotURL")]
    if options.get("liteEnvManifestURL"):
        manifest = site / options["liteEnvManifestURL"]
        chunks = read_json(manifest, what="image manifest", keys=("chunks",))
        folder = Path(options["liteEnvManifestURL"]).parent
        named += [options["liteEnvManifestURL"]]
        named += [(folder / c["file"]).as_posix() for c in chunks if isinstance(c.get("file"), str)]
    return frozenset(os.path.normpath(url).replace(os.sep, "/") for url in named if url)


def _set_kernel_settings(config: Path, settings: dict) -> None:
    document = read_json(config, what="site configuration", keys=())
    if not isinstance(document, dict) or not isinstance(
        document.setdefault("jupyter-config-data", {}), dict
    ):
        raise LiteEnvError(f"{config}: `jupyter-config-data` is not a mapping")
    plugins = document["jupyter-config-data"].setdefault("litePluginSettings", {})
    plugins.setdefault(KERNEL_PLUGIN, {}).update(settings)
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
