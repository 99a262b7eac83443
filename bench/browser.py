"""Open a site in headless Chromium and time its Pyodide kernel's start, cold and warm.

One *pair* = a fresh profile and a fresh server port: a cold load (empty profile), then a warm
load in the same profile (new tab, the origin's IndexedDB and localStorage cleared so that
JupyterLab shows the launcher again and reopens nothing; the HTTP cache and the service worker
stay). Times come from the page itself: `performance.now()` (ms since navigation start) when
the status bar first reads "| Idle" and when the cell's output appears, seen by a
MutationObserver. Requests and bytes come from the server, which logs every request.
"""

from __future__ import annotations

import gzip
import json
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from machine import foreign_load, sample

from lite_env.serve import StaticHandler, StaticServer
from lite_env.site_check import CHROMIUM, CHROMIUM_ARGS, LAB_PAGE, leaves_site, notebook_launcher

HOST = "127.0.0.1"
#: The first cell after idle, and the text its output shows when done.
CELL = ("print(6*7)", "42")
MARKS_PATH = "/__bench/marks"

INIT_SCRIPT = r"""
(() => {
  if (window.top !== window || window.__bench) return;
  const b = (window.__bench = { idle: null, result: null, cellStart: null, expect: null,
                                 error: null, launcher: null, statuses: [] });
  let last = "";
  const check = () => {
    if (b.launcher === null && document.querySelector('.jp-LauncherCard')) {
      b.launcher = performance.now();
    }
    if (b.idle === null) {
      for (const el of document.querySelectorAll('.jp-StatusBar-TextItem')) {
        const text = el.textContent.trim();
        if (!text.includes('|')) continue;
        if (text !== last) { last = text; b.statuses.push([performance.now(), text]); }
        if (/\|\s*Idle$/.test(text)) { b.idle = performance.now(); break; }
      }
    }
    if (b.expect !== null && b.result === null) {
      for (const el of document.querySelectorAll('.jp-OutputArea-output')) {
        if (el.textContent.includes(b.expect)) { b.result = performance.now(); break; }
        const stderr = el.matches('[data-mime-type="application/vnd.jupyter.stderr"]');
        if (stderr && /Error:|Traceback/.test(el.textContent)) {  // not a warning
          b.error = el.textContent.trim().split('\n').slice(-1)[0];
        }
      }
    }
  };
  new MutationObserver(check)
    .observe(document, { subtree: true, childList: true, characterData: true });
})();
"""


#: The block a throttled response is sent in.
BLOCK = 64 * 1024


class BenchHandler(StaticHandler):
    """lite-env's static handler, logging each request and taking the probes' marks."""

    def handle_one_request(self) -> None:
        self._code, self._sent, self._started = None, 0, time.time()
        try:
            super().handle_one_request()
        finally:
            if self._code is not None and getattr(self, "command", None):
                path = unquote(urlsplit(self.path).path)
                if not path.startswith("/__bench/"):
                    with self.server.lock:
                        self.server.log.append(
                            (self._started, self.command, path, self._code, self._sent)
                        )

    def send_response(self, code, message=None) -> None:
        self._code = code
        super().send_response(code, message)

    def copyfile(self, source, outputfile) -> None:
        start = source.tell()
        try:
            if self.server.bytes_per_s is None:
                super().copyfile(source, outputfile)
                return
            while block := source.read(BLOCK):
                self.server.throttle(len(block))
                outputfile.write(block)
        except ConnectionError:  # the page went away mid-file (a floor load ends early)
            pass
        finally:
            self._sent = source.tell() - start

    def do_POST(self) -> None:
        if not self.path.startswith(MARKS_PATH):
            self.send_error(405)
            return
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.server.lock:
            self.server.marks.append((time.time(), json.loads(body or b"{}")))
        self.send_response(204)
        self.end_headers()


class BenchServer(StaticServer):
    """The site on 127.0.0.1; with `mbit_per_s`, every response body shares one link of that
    bandwidth (a student's network, not loopback's), in blocks sent in turn."""

    def __init__(self, folder: Path, mbit_per_s: float | None = None) -> None:
        def make(*args, **kwargs):
            return BenchHandler(*args, directory=str(folder), **kwargs)

        super().__init__((HOST, 0), make)
        self.folder = folder
        self.bytes_per_s = mbit_per_s * 1e6 / 8 if mbit_per_s else None
        self._link_free_at = 0.0
        self.lock = threading.Lock()
        self.log: list[tuple[float, str, str, int, int]] = []
        self.marks: list[tuple[float, dict]] = []

    @property
    def origin(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}"

    def throttle(self, size: int) -> None:
        """Wait until the shared link has sent `size` more bytes."""
        with self.lock:
            start = max(time.monotonic(), self._link_free_at)
            self._link_free_at = start + size / self.bytes_per_s
            done = self._link_free_at
        time.sleep(max(0.0, done - time.monotonic()))


@dataclass
class Load:
    """One page load: what the page, the server and the machine saw."""

    variant: str
    kind: str  # cold | warm
    rep: int
    ok: bool = False
    error: str = ""
    nav_epoch_ms: float = 0.0
    launcher_ms: float | None = None
    idle_ms: float | None = None
    cell_ms: float | None = None  # from Shift+Enter to the output
    first_result_ms: float | None = None  # idle + cell
    runtime_ready_ms: float | None = None  # floor: Pyodide's loadPyodide resolved
    statuses: list = field(default_factory=list)
    server_requests: int = 0
    server_status: dict = field(default_factory=dict)
    bytes_sent: int = 0
    bytes_by_kind: dict = field(default_factory=dict)
    served: list = field(default_factory=list)  # [path, status, bytes, offset_ms]
    browser_requests: int = 0
    foreign_requests: list = field(default_factory=list)
    marks: dict = field(default_factory=dict)  # name → ms since navigation
    resources: list = field(default_factory=list)
    imports: dict | None = None
    console_errors: list = field(default_factory=list)
    load: dict = field(default_factory=dict)


def category(path: str) -> str:
    if path.startswith("/static/lite-env/"):
        return "image"
    if path.startswith("/static/pyodide/"):
        return "wheel" if path.endswith(".whl") else "runtime"
    if path.endswith(".whl") or ("/pypi/" in path and path.endswith("/all.json")):
        return "wheel"
    return "frontend"


def _launch(playwright, profile: str):
    return playwright.chromium.launch_persistent_context(
        profile, executable_path=CHROMIUM, headless=True, args=list(CHROMIUM_ARGS)
    )


def run_pair(
    playwright,
    variant: str,
    site: Path,
    rep: int,
    *,
    floor: bool,
    warm: bool = True,
    cell: tuple[str, str] = CELL,
    timeout: float = 120,
    mbit_per_s: float | None = None,
    log=print,
) -> list[Load]:
    """A cold load (fresh profile) and, with `warm`, a second load in the same profile; each
    runs `cell` (code, expected output) once the kernel is idle (the site served over a link
    of `mbit_per_s`, if given)."""
    server = BenchServer(site, mbit_per_s)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    loads = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-profile-") as profile:
            context = _launch(playwright, profile)
            try:
                context.add_init_script(INIT_SCRIPT)
                requests: list[str] = []
                errors: list[str] = []
                context.on("request", lambda r: requests.append(r.url))
                context.on(
                    "console",
                    lambda m: errors.append(m.text[:1500]) if m.type == "error" else None,
                )
                context.on("weberror", lambda e: errors.append(f"uncaught: {e.error}"[:1500]))
                kinds = ["cold", "warm"] if warm else ["cold"]
                for kind in kinds:
                    load = _one_load(
                        context,
                        server,
                        variant,
                        kind,
                        rep,
                        floor=floor,
                        cell=cell,
                        timeout=timeout,
                        requests=requests,
                        errors=errors,
                    )
                    loads.append(load)
                    log(_summary(load))
                    if not load.ok:
                        break
            finally:
                context.close()
    finally:
        server.shutdown()
        server.server_close()
    return loads


def _one_load(
    context, server, variant, kind, rep, *, floor, cell, timeout, requests, errors
) -> Load:
    from playwright.sync_api import Error as PlaywrightError

    load = Load(variant, kind, rep)
    for page in list(context.pages):
        if kind == "warm":
            page.close()
    page = context.new_page() if kind == "warm" or not context.pages else context.pages[0]
    if kind == "warm":
        cdp = context.new_cdp_session(page)
        cdp.send(
            "Storage.clearDataForOrigin",
            {"origin": server.origin, "storageTypes": "indexeddb,local_storage"},
        )
        cdp.detach()
    log_start, marks_start = len(server.log), len(server.marks)
    requests.clear()
    errors.clear()
    before = sample()
    try:
        page.goto(f"{server.origin}/{LAB_PAGE}", timeout=timeout * 1000)
        load.nav_epoch_ms = page.evaluate("performance.timeOrigin")
        page.locator(notebook_launcher()).click(timeout=timeout * 1000)
        if floor:
            load.runtime_ready_ms = _wait_floor(server, marks_start, load.nav_epoch_ms, timeout)
        else:
            page.wait_for_function(
                "() => window.__bench.idle !== null", polling=100, timeout=timeout * 1000
            )
            _run_cell(page, cell, timeout)
        state = page.evaluate("window.__bench")
        load.launcher_ms, load.idle_ms = state["launcher"], state["idle"]
        load.statuses = [[round(t), s] for t, s in state["statuses"]]
        if not floor:
            load.cell_ms = state["result"] - state["cellStart"]
            load.first_result_ms = load.idle_ms + load.cell_ms
        load.ok = True
        time.sleep(0.3)  # the probes send their last marks after the kernel's last call
    except PlaywrightError as error:
        load.error = error.message.splitlines()[0][:300]
    except (TimeoutError, RuntimeError) as error:
        load.error = str(error)
    after = sample()
    load.load = foreign_load(before, after)
    _account(load, server, log_start, marks_start)
    load.browser_requests = len(requests)
    load.foreign_requests = sorted({u for u in requests if leaves_site(u, server.origin)})
    load.console_errors = list(dict.fromkeys(errors))[:20]
    return load


def _run_cell(page, cell: tuple[str, str], timeout: float) -> None:
    code, expected = cell
    cells = page.locator(".jp-Notebook .jp-Cell")
    cells.nth(cells.count() - 1).locator(".cm-content").click()
    page.keyboard.insert_text(code)
    page.evaluate(
        f"() => {{ window.__bench.expect = {expected!r};"
        " window.__bench.cellStart = performance.now(); }"
    )
    page.keyboard.press("Shift+Enter")
    page.wait_for_function(
        "() => window.__bench.result !== null || window.__bench.error !== null",
        polling=50,
        timeout=timeout * 1000,
    )
    error = page.evaluate("window.__bench.error")
    if error:
        raise RuntimeError(f"the cell failed: {error}")


def _wait_floor(server, marks_start: int, nav_epoch: float, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with server.lock:
            for _, body in server.marks[marks_start:]:
                ready = body.get("marks", {}).get("floor-runtime-ready")
                if ready:
                    return ready - nav_epoch
        time.sleep(0.05)
    raise TimeoutError(f"the floor module did not report within {timeout:.0f} s")


def _account(load: Load, server, log_start: int, marks_start: int) -> None:
    with server.lock:
        entries = list(server.log[log_start:])
        bodies = [body for _, body in server.marks[marks_start:]]
    load.server_requests = len(entries)
    status: dict[str, int] = {}
    by_kind: dict[str, int] = {}
    for started, _, path, code, sent in entries:
        status[str(code)] = status.get(str(code), 0) + 1
        by_kind[category(path)] = by_kind.get(category(path), 0) + sent
        load.served.append([path, code, sent, round(started * 1000 - load.nav_epoch_ms)])
    load.server_status = status
    load.bytes_sent = sum(e[4] for e in entries)
    load.bytes_by_kind = by_kind
    for body in bodies:
        for name, epoch in body.get("marks", {}).items():
            load.marks[name] = round(epoch - load.nav_epoch_ms, 1)
        if body.get("resources"):
            load.resources = [
                {
                    **r,
                    "start": round(r["start"] - load.nav_epoch_ms, 1),
                    "end": round(r["end"] - load.nav_epoch_ms, 1),
                }
                for r in body["resources"]
            ]
        if body.get("imports"):
            load.imports = body["imports"]


def _summary(load: Load) -> str:
    if not load.ok:
        return f"  {load.variant:18} {load.kind:4} FAILED: {load.error}"
    main = (
        f"ready {load.runtime_ready_ms / 1000:6.2f} s"
        if load.runtime_ready_ms is not None
        else f"idle {load.idle_ms / 1000:6.2f} s  result {load.first_result_ms / 1000:6.2f} s"
    )
    return (
        f"  {load.variant:18} {load.kind:4} {main}  {load.server_requests:4} req "
        f"{load.bytes_sent / 1e6:6.2f} MB  foreign cpu {load.load['foreign_share']:.0%}"
        f"  load {load.load['loadavg_before'].split()[0]}"
    )


_GZIP_CACHE: dict[tuple[str, str], int] = {}


def gzip_size(site: Path, path: str) -> tuple[int, int]:
    """(raw size, gzip -6 size) of a site file; gzip is the smaller of the two (a server
    would not compress what does not shrink)."""
    file = site / path.lstrip("/")
    if file.is_dir():
        file = file / "index.html"
    if not file.is_file():
        return 0, 0
    raw = file.stat().st_size
    key = (str(site), path)
    if key not in _GZIP_CACHE:
        _GZIP_CACHE[key] = min(raw, len(gzip.compress(file.read_bytes(), compresslevel=6)))
    return raw, _GZIP_CACHE[key]
