"""Announce the kernel's start files in the site's pages, so that the browser fetches them while
JupyterLab's front end boots.

Without them the runtime, the image's manifest and its start chunks are requested only once the
kernel's worker exists, about 2.5 s after navigation. The pages of the apps that start a kernel
(lab, notebooks, repl, consoles) get a `<link rel="modulepreload">` for each module the worker
imports (the loader, pyodide.mjs, pyodide.asm.mjs) and a `<link rel="preload" as="fetch"
crossorigin>` for each file it fetches (pyodide.asm.wasm, the standard library, the lock, the
image's manifest, its chunks needed at start, the snapshot); the worker's requests then find
them in the browser's HTTP cache. Lazy chunks are left to the loader's own background fetch.
Off by default (`--preload-links` turns it on): the benchmark measured no faster start with
them, on loopback (where the start is bound by the CPU) or over a shared 20 or 40 Mbit/s link
(where the same bytes must pass either way).
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

from lite_env.errors import LiteEnvError
from lite_env.files import read_json, site_path

#: The JupyterLite apps whose page starts a kernel; the file browser (tree) and editor do not.
KERNEL_APPS = ("lab", "notebooks", "repl", "consoles")
#: The worker's modules beside the loader, and the runtime files it fetches.
RUNTIME_MODULES = ("pyodide.mjs", "pyodide.asm.mjs")
RUNTIME_FETCHES = ("pyodide.asm.wasm", "python_stdlib.zip")
BEGIN, END = "<!-- lite-env: the kernel's start files -->", "<!-- lite-env: end -->"
BLOCK = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END) + r"\n?", re.DOTALL)


def start_files(site: Path, settings: dict) -> list[tuple[str, bool]]:
    """The files a kernel with these settings loads as it starts, as (path relative to the
    site, whether it is a module), in the order the start needs them."""
    options = settings.get("loadPyodideOptions", {})
    loader = site_path(settings["pyodideUrl"])
    runtime = loader.parent
    files = [(loader, True)]
    files += [(runtime / name, True) for name in RUNTIME_MODULES if runtime / name != loader]
    files += [(runtime / name, False) for name in RUNTIME_FETCHES]
    files += [(site_path(options["lockFileURL"]), False)]
    if options.get("liteEnvSnapshotURL"):
        files.append((site_path(options["liteEnvSnapshotURL"]), False))
    if options.get("liteEnvManifestURL"):
        manifest = site_path(options["liteEnvManifestURL"])
        chunks = read_json(site / manifest, what="image manifest", keys=("chunks",))
        files.append((manifest, False))
        files += [(manifest.parent / c["file"], False) for c in chunks if not c.get("lazy")]
    return [(path.as_posix(), module) for path, module in files]


def add_preload_links(site: Path, settings: dict) -> list[Path]:
    """Announce the start files of the kernel with `settings` in the page of each app that
    starts a kernel (replacing an earlier announcement); return the pages written."""
    files = start_files(site, settings)
    written = []
    for app in KERNEL_APPS:
        page = site / app / "index.html"
        if not page.is_file():
            continue
        html = BLOCK.sub("", page.read_text(encoding="utf-8"))
        if "<head>" not in html:
            raise LiteEnvError(f"{page}: a JupyterLite page without <head>")
        links = [BEGIN, *(_link(os.path.relpath(site / path, page.parent), m) for path, m in files)]
        block = "\n    ".join([*links, END])
        page.write_text(html.replace("<head>", f"<head>\n    {block}", 1), encoding="utf-8")
        written.append(page)
    return written


def _link(href: str, module: bool) -> str:
    href = html.escape(href.replace(os.sep, "/"), quote=True)
    if module:
        return f'<link rel="modulepreload" href="{href}">'
    return f'<link rel="preload" href="{href}" as="fetch" crossorigin="anonymous">'
