"""Smoke-test a built site in headless Chromium: its kernel starts offline and imports work
(lite_env.firefox_check does the same in Firefox)."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from rich.filesize import decimal
from rich.text import Text

from lite_env.errors import LiteEnvError
from lite_env.files import read_json, site_path
from lite_env.pack import TEST_FOLDERS, read_image
from lite_env.serve import StaticServer, make_server
from lite_env.site import content_addressed, site_kernels

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page, Request, Response

HOST = "127.0.0.1"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
#: The page that opens JupyterLab; its launcher offers a notebook for each kernel.
LAB_PAGE = "lab/index.html"
#: The Pyodide kernel's name in the launcher, when a site has one environment.
PYODIDE_KERNEL = "Python (Pyodide)"
#: The status bar's kernel item reads "Python (Pyodide) | Idle" once the kernel has started.
KERNEL_IDLE = """() => [...document.querySelectorAll('.jp-StatusBar-TextItem')]
    .some((item) => /\\|\\s*Idle$/.test(item.textContent.trim()))"""
MARK = "lite-env-check:"
CONSOLE_TAIL = 25
#: How long the start may go on after an uncaught error before the check gives up.
ERROR_GRACE_S = 15.0


@dataclass(frozen=True)
class ModuleResult:
    """Whether one module imported in the kernel, and the error when it did not."""

    name: str
    ok: bool
    error: str = ""
    needs: str = ""  # an optional project the module imports that the environment lacks


@dataclass(frozen=True)
class CheckResult:
    """What `check_site` saw.

    Attributes:
        modules: one result per module asked for, in the order asked.
        time_to_idle_s: seconds from navigation to the kernel's first "Idle".
        outputs: the text output of each extra cell, in order.
        requests: every URL the page, its workers and the service worker requested.
        foreign_requests: the requests that left the site's host (empty for a good site).
        responses: distinct URLs answered over the network (not by the service worker).
        bytes_received: their bodies' total size as sent (Content-Length: compressed, for a
            file the server sent precompressed).
        bytes_decoded: their bodies' total size once decoded (what they would weigh sent
            as they are).
        console_errors: browser console errors and uncaught exceptions, with their source.
        screenshot: the screenshot file, when one was asked for and could be saved.
    """

    modules: tuple[ModuleResult, ...]
    time_to_idle_s: float
    outputs: tuple[str, ...]
    requests: tuple[str, ...]
    foreign_requests: tuple[str, ...]
    responses: int
    bytes_received: int
    bytes_decoded: int
    console_errors: tuple[str, ...]
    screenshot: Path | None = None

    @property
    def failed(self) -> tuple[ModuleResult, ...]:
        return tuple(m for m in self.modules if not m.ok)

    @property
    def ok(self) -> bool:
        """Every module imported and nothing was requested outside the site."""
        return not self.failed and not self.foreign_requests

    def to_json(self) -> dict:
        """The check's summary (`lite-env check --json`)."""
        return {
            "ok": self.ok,
            "time_to_idle_s": round(self.time_to_idle_s, 2),
            "modules": {m.name: m.error or "ok" for m in self.modules},
            "foreign_requests": list(self.foreign_requests),
            "bytes_received": self.bytes_received,
            "bytes_decoded": self.bytes_decoded,
            "requests": len(self.requests),
        }

    def rows(self) -> list[tuple[str, str | Text]]:
        """(module, outcome) for each module, a failure styled (rich Text, never markup)."""
        rows = []
        for module in self.modules:
            if module.needs:
                outcome = f"ok, but it imports {module.needs}, which is not in the environment"
            else:
                outcome = "ok" if module.ok else Text.assemble(("FAIL", "red"), " ", module.error)
            rows.append((module.name, outcome))
        return rows

    def lines(self) -> list[str | Text]:
        """The check's summary for a person, one line each (rich Text, never markup)."""
        return [
            f"kernel ready in {self.time_to_idle_s:.1f} s;"
            f" {len(self.modules) - len(self.failed)}/{len(self.modules)} modules import;"
            f" {decimal(self.bytes_received)} received"
            f" ({decimal(self.bytes_decoded)} decoded);"
            f" {len(self.foreign_requests)} requests left the site",
            *(Text.assemble(("outside request:", "red"), " ", u) for u in self.foreign_requests),
        ]


@dataclass
class Notebook:
    """An open notebook with an idle kernel, and what the browser did so far."""

    page: Page
    site: Path
    origin: str  # the served site's http://host:port
    time_to_idle_s: float = 0.0
    requests: list[str] = field(default_factory=list)
    responses: dict[str, Response] = field(default_factory=dict)  # by URL
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    uncaught: list[tuple[float, str]] = field(default_factory=list)  # (perf_counter, error)

    def foreign_requests(self) -> list[str]:
        """Requests that left the served site (see leaves_site)."""
        return list(dict.fromkeys(url for url in self.requests if leaves_site(url, self.origin)))

    def bytes_received(self) -> int:
        """The bodies' size as sent (compressed where the server sent a precompressed file)."""
        return sum(int(r.headers.get("content-length", 0)) for r in self.responses.values())

    def bytes_decoded(self) -> int:
        """The bodies' size once decoded: a precompressed file counts as the site's file it
        stands for."""
        return sum(
            decoded_size(
                self.site,
                self.origin,
                r.url,
                int(r.headers.get("content-length", 0)),
                r.headers.get("content-encoding", ""),
            )
            for r in self.responses.values()
        )


def decoded_size(site: Path, origin: str, url: str, length: int, encoding: str) -> int:
    """A response body's size once decoded: a precompressed file of the site (served at
    `origin`) counts as the site's file it stands for; any other body as sent (`length`)."""
    file = site / unquote(urlsplit(url).path).lstrip("/")
    if encoding and not leaves_site(url, origin) and file.is_file():
        return file.stat().st_size
    return length


def check_site(
    site: Path,
    *,
    imports: Sequence[str],
    kernel: str = PYODIDE_KERNEL,
    cells: Sequence[str] = (),
    timeout: float = 180,
    screenshot: Path | None = None,
) -> CheckResult:
    """Open `site` in headless Chromium, start a notebook's kernel and import each module.

    Args:
        site: a built site folder (served on 127.0.0.1 for the check).
        imports: the modules to import, each on its own so one failure hides no other.
        kernel: the kernel's name in the launcher (its display name, see site_kernels).
        cells: more code cells to run afterwards; their outputs are returned.
        timeout: seconds allowed for the kernel to start, and for each cell.
        screenshot: where to save a PNG of the page at the end, if anywhere.

    Raises LiteEnvError when Playwright or Chromium is missing or the kernel never gets idle.
    """
    with open_notebook(site, timeout=timeout, kernel=kernel) as notebook:
        output = run_cell(notebook.page, import_code(imports), timeout=timeout)
        outputs = tuple(run_cell(notebook.page, code, timeout=timeout) for code in cells)
        if screenshot is not None:
            screenshot = _screenshot(notebook.page, screenshot)
        return CheckResult(
            modules=parse_imports(output, imports),
            time_to_idle_s=notebook.time_to_idle_s,
            outputs=outputs,
            requests=tuple(notebook.requests),
            foreign_requests=tuple(notebook.foreign_requests()),
            responses=len(notebook.responses),
            bytes_received=notebook.bytes_received(),
            bytes_decoded=notebook.bytes_decoded(),
            console_errors=tuple(notebook.errors),
            screenshot=screenshot,
        )


@contextmanager
def open_notebook(
    site: Path,
    *,
    timeout: float = 180,
    server: StaticServer | None = None,
    kernel: str = PYODIDE_KERNEL,
) -> Iterator[Notebook]:
    """Serve `site`, open a new notebook of `kernel` (its name in the launcher) in a fresh
    headless Chromium, wait for idle.

    `server` serves the site on HOST instead of lite-env's own server (made with make_server,
    not started: this serves it until the block ends).
    """
    sync_playwright = _playwright()
    chromium = _chromium()
    if not (site / LAB_PAGE).is_file():
        raise LiteEnvError(f"{site}: not a built site (no {LAB_PAGE})", hint="run `lite-env build`")
    server = server or make_server(site, host=HOST, port=0, immutable=content_addressed(site))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
            context = _launch(playwright, chromium, profile)
            try:
                origin = f"http://{HOST}:{server.server_address[1]}"
                page = context.pages[0] if context.pages else context.new_page()
                notebook = Notebook(page, site, origin)
                _record(context, notebook)
                url = f"{origin}/{LAB_PAGE}"
                notebook.time_to_idle_s = _start_kernel(notebook, url, kernel, timeout)
                yield notebook
            finally:
                context.close()
    finally:
        server.shutdown()
        server.server_close()


def run_cell(page: Page, code: str, *, timeout: float = 60) -> str:
    """Type `code` into the notebook's last cell, run it, and return its output as text."""
    cells = page.locator(".jp-Notebook .jp-Cell")
    cell = cells.nth(cells.count() - 1)  # by index: running the cell appends a new one
    cell.locator(".cm-content").click()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.insert_text(code.rstrip("\n"))
    page.keyboard.press("Shift+Enter")
    prompt = cell.locator(".jp-InputArea-prompt")
    deadline = time.monotonic() + timeout
    while not re.fullmatch(r"\[\d+\]:", (prompt.text_content() or "").strip()):
        if time.monotonic() > deadline:
            raise cell_timed_out(code, timeout)
        page.wait_for_timeout(100)
    return "\n".join(cell.locator(".jp-OutputArea-output").all_inner_texts())


def import_code(modules: Sequence[str]) -> str:
    """One cell that imports each module on its own and prints a line for each: OK, NEEDS
    (it imports an optional project that is not in the environment, as matplotlib_inline does
    matplotlib) or FAIL."""
    return (
        "import importlib as _il\n"
        f"_ms = {json.dumps(list(modules))}\n"
        "for _m in _ms:\n"
        "    try:\n"
        "        _il.import_module(_m)\n"
        f"        print({MARK!r}, _m, 'OK')\n"
        "    except ModuleNotFoundError as _e:\n"
        "        _top = (_e.name or '').split('.')[0]\n"
        f"        print({MARK!r}, _m, 'FAIL' if not _top or _top in _ms else 'NEEDS', _top"
        " if _top and _top not in _ms else repr(_e))\n"
        "    except BaseException as _e:\n"
        f"        print({MARK!r}, _m, 'FAIL', repr(_e).replace('\\n', ' '))\n"
    )


def parse_imports(output: str, modules: Sequence[str]) -> tuple[ModuleResult, ...]:
    """The result of each module from `import_code`'s output; a module with no line failed."""
    seen: dict[str, ModuleResult] = {}
    for line in output.splitlines():
        parts = line.strip().split(" ", 3)
        if len(parts) >= 3 and parts[0] == MARK:
            name, outcome, detail = parts[1], parts[2], " ".join(parts[3:])
            if outcome == "FAIL":
                seen[name] = ModuleResult(name, False, detail)
            else:
                seen[name] = ModuleResult(name, True, needs=detail if outcome == "NEEDS" else "")
    missing = f"no result; the cell printed:\n{output[-2000:]}"
    return tuple(seen.get(name, ModuleResult(name, False, missing)) for name in modules)


def top_level_modules(image_folder: Path, manifest: str) -> list[str]:
    """The importable top-level modules in an image's site-packages, sorted (see
    pack.top_level_modules)."""
    chunks = read_image(image_folder, manifest).chunks
    return sorted({module for chunk in chunks for module in chunk.modules})


def site_image(site: Path, kernel: str | None = None) -> tuple[Path, str]:
    """The image folder and manifest name that a built site's kernel (the first, or the one
    named `kernel`) points at.

    Raises LiteEnvError for a folder that is not a built site, or a site built in lock mode
    (it has no image).
    """
    options = _kernel_settings(site, kernel).get("loadPyodideOptions", {})
    if "liteEnvManifestURL" not in options:
        raise LiteEnvError(
            f"{site}: the site has no image (built with `--mode lock`)",
            hint="its packages are listed in its pyodide-lock.json",
        )
    manifest = site / site_path(options["liteEnvManifestURL"])
    return manifest.parent, manifest.name


def site_modules(site: Path, kernel: str | None = None) -> list[str]:
    """The top-level modules of a built site's environment (the first kernel's, or the one
    named `kernel`): its image's, or in lock mode, those that its pyodide-lock.json names for
    the packages the kernel loads."""
    options = _kernel_settings(site, kernel).get("loadPyodideOptions", {})
    if "liteEnvManifestURL" in options:
        return top_level_modules(*site_image(site, kernel))
    lock_url = options.get("lockFileURL")
    if not lock_url:
        raise LiteEnvError(f"{site}: the kernel's settings name neither an image nor a lock")
    lock = read_json(site / site_path(lock_url), what="pyodide-lock.json", keys=("packages",))
    return sorted(
        {
            module
            for name in options.get("packages", [])
            for module in lock.get(name, {}).get("imports", [])
            if module not in TEST_FOLDERS
        }
    )


def notebook_launcher(kernel: str = PYODIDE_KERNEL) -> str:
    """The selector of the launcher's card that opens a notebook of `kernel` (its title)."""
    return f'.jp-LauncherCard[data-category="Notebook"][title={css_string(kernel)}]'


def css_string(text: str) -> str:
    """`text` as a CSS string: quotes and backslashes escaped, control characters as hex."""
    escaped = (
        f"\\{c}" if c in '"\\' else f"\\{ord(c):x} " if not c.isprintable() else c for c in text
    )
    return f'"{"".join(escaped)}"'


def kernel_titles(site: Path) -> dict[str, str]:
    """Each kernel of a built site (by name) with its name in the launcher."""
    return {
        name: settings.get("display_name", PYODIDE_KERNEL)
        for name, settings in site_kernels(site).items()
    }


def _kernel_settings(site: Path, kernel: str | None) -> dict:
    kernels = site_kernels(site)
    if kernel is None:
        return next(iter(kernels.values()))
    if kernel not in kernels:
        raise LiteEnvError(f"{site}: no kernel {kernel} (it has {', '.join(kernels)})")
    return kernels[kernel]


def _start_kernel(notebook: Notebook, url: str, kernel: str, timeout: float) -> float:
    """Open the lab, start a notebook of `kernel`; return seconds from navigation to idle.

    Gives up at `timeout`, or ERROR_GRACE_S after an uncaught error if the kernel is not idle
    by then (a failed start leaves it "Unknown" forever).
    """
    from playwright.sync_api import Error as PlaywrightError

    page = notebook.page
    started = time.perf_counter()
    try:
        page.goto(url, timeout=timeout * 1000)
        page.locator(notebook_launcher(kernel)).click(timeout=timeout * 1000)
        while True:
            try:
                page.wait_for_function(KERNEL_IDLE, polling=50, timeout=1000)
                return time.perf_counter() - started
            except PlaywrightError:  # a TimeoutError: look again, unless there is no hope
                now = time.perf_counter()
                failing = notebook.uncaught and now - notebook.uncaught[0][0] > ERROR_GRACE_S
                if failing or now - started > timeout:
                    break
    except PlaywrightError as error:  # the lab did not load, or the page went away
        notebook.console.append(f"playwright: {error.message.splitlines()[0]}")
    raise not_idle(
        kernel, notebook.uncaught[0][1] if notebook.uncaught else "", notebook.console, timeout
    )


def not_idle(kernel: str, uncaught: str, console: Sequence[str], timeout: float) -> LiteEnvError:
    """The error of a kernel that never got idle: its first uncaught error, if any, and the
    console's last lines."""
    problem = (
        f"failed to start: {uncaught}"
        if uncaught
        else f"did not become idle within {timeout:.0f} s"
    )
    return LiteEnvError(
        f"the kernel {kernel} {problem}",
        hint="the browser console's last lines:\n"
        + "\n".join(console[-CONSOLE_TAIL:] or ["(empty)"]),
    )


def cell_timed_out(code: str, timeout: float) -> LiteEnvError:
    """The error of a cell that did not finish in time."""
    return LiteEnvError(f"a cell did not finish within {timeout:.0f} s", hint=f"the cell:\n{code}")


def _record(context: BrowserContext, notebook: Notebook) -> None:
    """Record the requests, responses and console of the page, its workers and service worker."""

    def on_request(request: Request) -> None:
        notebook.requests.append(request.url)

    def on_response(response: Response) -> None:
        if not response.from_service_worker:  # else the service worker's own fetch counts
            notebook.responses.setdefault(response.url, response)  # repeats come from cache

    def on_console(message) -> None:
        where = message.location.get("url", "") if message.location else ""
        line = f"{message.type}: {message.text}" + (f" ({where})" if where else "")
        notebook.console.append(line)
        if message.type == "error":
            notebook.errors.append(line)

    def on_error(web_error) -> None:
        error = web_error.error
        text = f"{error.name}: {error.message}" if error.name else error.message
        notebook.console.append(f"uncaught: {text}")
        notebook.errors.append(f"uncaught: {text}")
        notebook.uncaught.append((time.perf_counter(), text))

    context.on("request", on_request)
    context.on("response", on_response)
    context.on("console", on_console)
    context.on("weberror", on_error)


def _screenshot(page: Page, path: Path) -> Path | None:
    """Save a PNG of the page; a screenshot that cannot be saved is not the site's fault."""
    from playwright.sync_api import Error as PlaywrightError

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path))
    except (OSError, PlaywrightError):
        return None
    return path


def _launch(playwright, chromium: str, profile: str) -> BrowserContext:
    """A headless Chromium with a fresh profile, quiet on the network."""
    from playwright.sync_api import Error as PlaywrightError

    try:
        return playwright.chromium.launch_persistent_context(
            profile, executable_path=chromium, headless=True, args=list(CHROMIUM_ARGS)
        )
    except PlaywrightError as error:
        raise LiteEnvError(
            f"{chromium} did not start", hint="\n".join(error.message.splitlines()[:20])
        ) from None


def leaves_site(url: str, origin: str) -> bool:
    """Whether a request goes elsewhere than the served site at `origin`: another host, or
    another port of the same host (another service on the check's machine); data:, blob: and
    the like stay local."""
    parts, site = urlsplit(url), urlsplit(origin)
    if parts.scheme not in ("http", "https", "ws", "wss", "ftp"):
        return False
    try:
        return (parts.hostname, parts.port) != (site.hostname, site.port)
    except ValueError:  # a port out of range: no request of the site's
        return True


def _playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise LiteEnvError(
            "the site check needs Playwright, which is not installed",
            hint="pip install playwright (it drives the system's Chromium: "
            "no `playwright install` needed)",
        ) from None
    return sync_playwright


def _chromium() -> str:
    found = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if found is None:
        raise LiteEnvError(
            "the site check needs Chromium, which is not installed",
            hint="on Debian or Ubuntu: sudo apt-get install -y chromium",
        )
    return found
