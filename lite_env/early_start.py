"""Start the default kernel with the page: its worker boots Python while the front end loads.

JupyterLite creates a kernel's worker only when a notebook or console asks for the kernel,
about 2.5 s after navigation, once JupyterLab's front end has booted; the runtime, the image
and Python's start all wait for that. With early start, the pages of the apps that start a
kernel (lite_env.pages) create the default kernel's worker as they load: a small module,
written here beside the image, that imports the Pyodide kernel's own worker code
(jupyterlite-pyodide-kernel's `comlink.worker.*.js`) and starts lite-env's loader with the
kernel's settings at once. Python boots on another core while the front end loads. When the
kernel is then created, lite-env's kernels extension (lite_env/labextension) hands it this
worker instead of a new one, and the loader gives the kernel the Python it booted, provided the
kernel asks for exactly the settings it was booted with (otherwise it boots afresh). A page
whose kernel is never started has paid for a booted interpreter in a worker.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from lite_env.errors import LiteEnvError
from lite_env.files import site_path, write_atomically
from lite_env.kernel import KERNEL_EXTENSION
from lite_env.pages import kernel_pages, write_block

#: The pages' block that starts the worker (lite_env.pages).
BLOCK = "the kernel starts with the page"
#: Where the Pyodide kernel's worker code is in a built site (its name has a content hash).
KERNEL_WORKERS = Path("extensions") / KERNEL_EXTENSION / "static"
WORKER_GLOB = "comlink.worker.*.js"
#: The early workers' names (named by their content).
EARLY_WORKERS = "kernel-*.mjs"


def add_early_start(site: Path, settings: dict, folder: Path) -> Path:
    """Write the default kernel's early worker into `folder` (relative to the site) and have
    each page that starts a kernel create it; return the worker module's path in the site.

    Raises LiteEnvError when the site has no Pyodide kernel worker code to import.
    """
    workers = sorted((site / KERNEL_WORKERS).glob(WORKER_GLOB))
    if len(workers) != 1:
        raise LiteEnvError(
            f"{site / KERNEL_WORKERS}: expected one {WORKER_GLOB}, found {len(workers)}",
            hint="the site's Pyodide kernel extension is not the one lite-env knows (0.8.6)",
        )
    loader = site_path(settings["pyodideUrl"])
    options = settings.get("loadPyodideOptions", {})
    source = _worker_source(
        loader=_relative(site / loader, site / folder),
        kernel_worker=_relative(workers[0], site / folder),
        root=_relative(site, site / folder) + "/",
        options=options,
    )
    name = EARLY_WORKERS.replace("*", _digest(source))
    worker = write_atomically(site / folder / name, source)
    started = {"pyodideUrl": settings["pyodideUrl"], "loadPyodideOptions": options}
    for page in kernel_pages(site):
        write_block(page, BLOCK, _page_script(_relative(worker, page.parent), started))
    return worker.relative_to(site)


def _worker_source(*, loader: str, kernel_worker: str, root: str, options: dict) -> str:
    return (
        "// lite-env: the default kernel's worker, created by the site's pages as they load\n"
        "// (lite_env/early_start.py): the Pyodide kernel's own worker, with the loader started\n"
        "// with the kernel's settings at once.\n"
        f"import {{ startEarly }} from {_js(loader)};\n"
        f"import {_js(kernel_worker)};\n\n"
        f"startEarly(\n  new URL({_js(loader)}, import.meta.url),\n"
        f"  new URL({_js(root)}, import.meta.url),\n"
        f"  {_js(options)},\n);\n"
    )


def _page_script(worker: str, settings: dict) -> list[str]:
    """The page's inline script: create the worker (not where the kernel would use another
    kind, a cross-origin isolated page) and leave it, with the settings it started with
    (URLs relative to the site's root, as in jupyter-lite.json), for the kernels extension."""
    script = (
        "if (self.Worker && !self.crossOriginIsolated) {"
        f" self.liteEnvEarlyKernel = {{ settings: {_js(settings)},"
        f" worker: new Worker(new URL({_js(worker)}, document.baseURI),"
        ' { type: "module" }) }; }'
    )
    return [f"<script>{script}</script>"]


def _relative(path: Path, start: Path) -> str:
    return os.path.relpath(path, start).replace(os.sep, "/")


def _js(value: object) -> str:
    """A JavaScript literal of a JSON value that cannot end an inline script."""
    return json.dumps(value, sort_keys=True).replace("<", "\\u003c")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]
