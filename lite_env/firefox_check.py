"""Smoke-test a built site in headless Firefox, as site_check does in Chromium.

Playwright's Python API drives only its own patched Firefox, so a small node script
(firefox_check.mjs, with puppeteer-core over WebDriver BiDi) drives Debian's firefox-esr: it
opens the lab, starts the kernel, runs the cells and prints what it saw as JSON. What to
import, how to read the outputs and what counts as a failure stay here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lite_env.errors import LiteEnvError
from lite_env.serve import make_server
from lite_env.site import content_addressed
from lite_env.site_check import (
    CONSOLE_TAIL,
    ERROR_GRACE_S,
    HOST,
    KERNEL_IDLE,
    LAB_PAGE,
    PYODIDE_KERNEL,
    CheckResult,
    cell_timed_out,
    decoded_size,
    import_code,
    leaves_site,
    not_idle,
    notebook_launcher,
    parse_imports,
)

FIREFOX = "/usr/bin/firefox-esr"
DRIVER = Path(__file__).with_name("firefox_check.mjs")
#: Where scripts/setup.sh installs puppeteer-core with npm: beside the Python environment.
NODE_PREFIX = Path(sys.prefix) / "node"
#: Seconds the driver may take beyond the check's own timeouts (Firefox's start and end).
SLACK_S = 60
SETUP_HINT = "bash scripts/setup.sh installs it (Debian's firefox-esr, a pinned puppeteer-core)"


@dataclass(frozen=True)
class FirefoxRun:
    """What the driver saw: seconds to idle, each cell's output and seconds from Shift+Enter
    to its result, and the browser's requests, responses and console."""

    time_to_idle_s: float
    outputs: tuple[str, ...]
    cell_seconds: tuple[float, ...]
    requests: tuple[str, ...]
    responses: dict[str, tuple[int, str]]  # URL → (Content-Length, Content-Encoding), first seen
    console: tuple[str, ...]
    errors: tuple[str, ...]
    origin: str  # the served site's http://host:port


def check_site_firefox(
    site: Path,
    *,
    imports: Sequence[str],
    kernel: str = PYODIDE_KERNEL,
    cells: Sequence[str] = (),
    timeout: float = 180,
    screenshot: Path | None = None,
) -> CheckResult:
    """Open `site` in headless Firefox, start a notebook's kernel and import each module
    (the arguments are check_site's).

    Raises LiteEnvError when node, firefox-esr or puppeteer-core is missing, or the kernel
    never gets idle.
    """
    run = run_in_firefox(
        site, [import_code(imports), *cells], kernel=kernel, timeout=timeout, screenshot=screenshot
    )
    return CheckResult(
        modules=parse_imports(run.outputs[0], imports),
        time_to_idle_s=run.time_to_idle_s,
        outputs=run.outputs[1:],
        requests=run.requests,
        foreign_requests=tuple(
            dict.fromkeys(u for u in run.requests if leaves_site(u, run.origin))
        ),
        responses=len(run.responses),
        bytes_received=sum(length for length, _ in run.responses.values()),
        bytes_decoded=sum(
            decoded_size(site, run.origin, url, *sent) for url, sent in run.responses.items()
        ),
        console_errors=run.errors,
        screenshot=screenshot if screenshot is not None and screenshot.is_file() else None,
    )


def run_in_firefox(
    site: Path,
    cells: Sequence[str],
    *,
    kernel: str = PYODIDE_KERNEL,
    timeout: float = 180,
    screenshot: Path | None = None,
) -> FirefoxRun:
    """Serve `site` on HOST, open a new notebook of `kernel` in a fresh headless Firefox, wait
    for idle and run `cells` one after the other."""
    node, firefox = _tool("node", "node"), _tool(FIREFOX, "firefox-esr")
    if not (NODE_PREFIX / "node_modules" / "puppeteer-core").is_dir():
        raise LiteEnvError(
            f"the Firefox check needs puppeteer-core in {NODE_PREFIX}", hint=SETUP_HINT
        )
    if not (site / LAB_PAGE).is_file():
        raise LiteEnvError(f"{site}: not a built site (no {LAB_PAGE})", hint="run `lite-env build`")
    server = make_server(site, host=HOST, port=0, immutable=content_addressed(site))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    origin = f"http://{HOST}:{server.server_address[1]}"
    task = {
        "npm_prefix": str(NODE_PREFIX),
        "firefox": firefox,
        "url": f"{origin}/{LAB_PAGE}",
        "launcher": notebook_launcher(kernel),
        "idle": KERNEL_IDLE,
        "cells": list(cells),
        "timeout_s": timeout,
        "grace_s": ERROR_GRACE_S,
        "screenshot": str(screenshot) if screenshot else None,
    }
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
    driver = subprocess.Popen(
        [node, str(DRIVER)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    limit = timeout * (1 + len(cells)) + SLACK_S
    try:
        stdout, stderr = driver.communicate(json.dumps(task), timeout=limit)
    except subprocess.TimeoutExpired:
        _stop(driver)
        raise LiteEnvError(f"the Firefox check did not end within {limit:.0f} s") from None
    finally:
        server.shutdown()
        server.server_close()
    try:
        seen = json.loads(stdout)
    except json.JSONDecodeError:
        raise LiteEnvError("the Firefox driver failed", hint=(stderr or stdout)[-2000:]) from None
    return _firefox_run(seen, kernel, cells, timeout, origin)


def _firefox_run(
    seen: dict, kernel: str, cells: Sequence[str], timeout: float, origin: str
) -> FirefoxRun:
    """The driver's JSON as a FirefoxRun; LiteEnvError for a kernel that never got idle or a
    cell that did not finish."""
    console = list(seen["console"])
    if seen.get("error"):
        console.append(f"driver: {seen['error']}")  # the lab did not load, or the page went away
    # Firefox words a worker's uncaught error as "uncaught exception: <message>"
    errors = [error["text"].removeprefix("uncaught exception: ") for error in seen["uncaught"]]
    uncaught = [f"uncaught: {text}" for text in errors]
    if seen["idle_s"] is None:
        raise not_idle(kernel, errors[0] if errors else "", [*console, *uncaught], timeout)
    for code, cell in zip(cells, seen["cells"], strict=False):
        if cell["output"] is None:
            raise cell_timed_out(code, timeout)
    if len(seen["cells"]) < len(cells):
        raise LiteEnvError("the Firefox driver stopped", hint="\n".join(console[-CONSOLE_TAIL:]))
    responses: dict[str, tuple[int, str]] = {}
    for response in seen["responses"]:
        responses.setdefault(response["url"], (response["length"], response["encoding"]))
    return FirefoxRun(
        time_to_idle_s=seen["idle_s"],
        outputs=tuple(cell["output"] for cell in seen["cells"]),
        cell_seconds=tuple(cell["seconds"] for cell in seen["cells"]),
        requests=tuple(seen["requests"]),
        responses=responses,
        console=tuple(console),
        errors=tuple([line for line in console if line.startswith("error:")] + uncaught),
        origin=origin,
    )


def _stop(driver: subprocess.Popen) -> None:
    """Stop a driver that hangs: SIGTERM, on which puppeteer kills the Firefox it started (in a
    process group of its own), then SIGKILL."""
    driver.terminate()
    try:
        driver.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        driver.kill()
        driver.communicate()


def _tool(path: str, package: str) -> str:
    found = shutil.which(path)
    if found is None:
        raise LiteEnvError(
            f"the Firefox check needs {package}, which is not installed", hint=SETUP_HINT
        )
    return found
