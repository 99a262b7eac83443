"""A Chrome trace (V8 CPU profiler) of one cold kernel start, cut at the probe's marks.

The probe's marks are also `performance.mark("bench:<name>")` calls in the worker, so they
appear in the trace on the worker's own clock. The worker thread's CPU samples are summed
between consecutive marks: by category (wasm, JavaScript, GC, idle...) and by function.
Runs in a non-persistent Chromium (a fresh in-memory profile: a cold load), since Playwright
traces a Browser, not a persistent context.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

from browser import INIT_SCRIPT, BenchServer

from lite_env.site_check import CHROMIUM, CHROMIUM_ARGS, LAB_PAGE, notebook_launcher

CATEGORIES = [
    "disabled-by-default-v8.cpu_profiler",
    "blink.user_timing",
    "v8",
    "v8.wasm",
    "devtools.timeline",
]


def trace_start(playwright, site: Path, out: Path, *, timeout: float = 180) -> dict:
    """Open `site` (a probed site) once, traced; write the raw trace to `out`; summarize."""
    server = BenchServer(site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=list(CHROMIUM_ARGS)
    )
    try:
        context = browser.new_context()
        context.add_init_script(INIT_SCRIPT)
        page = context.new_page()
        browser.start_tracing(page=page, categories=CATEGORIES)
        page.goto(f"{server.origin}/{LAB_PAGE}", timeout=timeout * 1000)
        page.locator(notebook_launcher()).click(timeout=timeout * 1000)
        page.wait_for_function(
            "() => window.__bench.idle !== null", polling=100, timeout=timeout * 1000
        )
        idle_ms = page.evaluate("window.__bench.idle")
        time.sleep(0.5)
        raw = browser.stop_tracing()
        context.close()
    finally:
        browser.close()
        server.shutdown()
        server.server_close()
    out.write_bytes(raw)
    wasm = site / "static" / "pyodide" / "pyodide.asm.wasm"
    summary = summarize(json.loads(raw), wasm_export_names(wasm) if wasm.exists() else None)
    summary["idle_ms"] = idle_ms
    return summary


def wasm_export_names(wasm: Path) -> dict[int, str]:
    """Function index → export name, from the module's export section (Pyodide's wasm has
    no name section, but exports nearly every symbol for dynamic linking)."""
    data = wasm.read_bytes()

    def leb(i: int) -> tuple[int, int]:
        result = shift = 0
        while True:
            byte = data[i]
            i += 1
            result |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return result, i

    names, i = {}, 8
    while i < len(data):
        section, (size, j) = data[i], leb(i + 1)
        if section == 7:
            count, k = leb(j)
            for _ in range(count):
                length, k = leb(k)
                name = data[k : k + length].decode("utf-8", "replace")
                kind, (index, k) = data[k + length], leb(k + length + 1)
                if kind == 0:
                    names.setdefault(index, name)
        i = j + size
    return names


def _category(frame: dict) -> str:
    name = frame.get("functionName", "")
    url = frame.get("url", "")
    if name in ("(garbage collector)", "(idle)", "(program)", "(root)"):
        return name
    if url.endswith(".wasm") or name.startswith("$") or "wasm-function" in name:
        return "wasm"
    if "pyodide.asm" in url:
        return "JS: pyodide.asm.mjs"
    if url.endswith("lite-env-probed.mjs") or url.endswith("lite-env.mjs"):
        return "JS: lite-env loader"
    if url:
        return "JS: " + url.rsplit("/", 1)[-1].split("?")[0][:40]
    return "JS/native: " + (name or "(anonymous)")[:40]


#: Exported functions whose presence on the stack says what the interpreter is doing.
ACTIVITIES = (
    ("compile source → bytecode", {"Py_CompileStringObject", "Py_CompileStringExFlags",
                                   "_PyAST_Compile"}),
    ("unmarshal .pyc", {"PyMarshal_ReadObjectFromString", "PyMarshal_ReadLastObjectFromFile"}),
    ("zlib inflate", {"inflate"}),
)  # fmt: skip


def _activity(profile: dict, node_id: int, names: dict[int, str] | None, cache: dict) -> str:
    key = (id(profile), node_id)
    if key in cache:
        return cache[key]
    found, current, seen = None, node_id, 0
    while current is not None and seen < 500:
        node = profile["nodes"].get(current)
        if node is None:
            break
        function = node.get("callFrame", {}).get("functionName", "")
        if names and function.startswith("wasm-function["):
            function = names.get(int(function[len("wasm-function[") : -1]), function)
        for label, markers in ACTIVITIES:
            if function in markers:
                found = label
        current = node.get("parent")
        seen += 1
    cache[key] = found
    return found


def summarize(trace: dict, names: dict[int, str] | None = None) -> dict:
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    threads = {
        (e["pid"], e["tid"]): e["args"]["name"]
        for e in events
        if e.get("ph") == "M" and e.get("name") == "thread_name"
    }
    marks = {}
    for e in events:
        name = e.get("name", "")
        if name.startswith("bench:") and e.get("ph") in ("R", "I", "n", "b", "i", "e"):
            marks.setdefault(name[len("bench:") :], (e["ts"], e["pid"], e["tid"]))
    if not marks:
        return {"error": "no bench marks in the trace"}
    worker = next(iter(marks.values()))[1:]
    # samples of the worker's profile
    profiles: dict[str, dict] = {}
    for e in events:
        if e.get("name") == "Profile" and (e["pid"], e["tid"]) == worker:
            profiles[e["id"]] = {"start": e["args"]["data"]["startTime"], "nodes": {}, "t": None}
    samples = []  # (ts, node id, profile id)
    for e in events:
        if e.get("name") != "ProfileChunk" or e.get("id") not in profiles:
            continue
        profile = profiles[e["id"]]
        data = e["args"]["data"]
        for node in data.get("cpuProfile", {}).get("nodes", []):
            profile["nodes"][node["id"]] = node
        t = profile["t"] if profile["t"] is not None else profile["start"]
        for node_id, delta in zip(
            data["cpuProfile"].get("samples", []), data.get("timeDeltas", []), strict=False
        ):
            t += delta
            samples.append((t, node_id, e["id"]))
        profile["t"] = t
    samples.sort()
    ordered = sorted(marks.items(), key=lambda kv: kv[1][0])
    windows = []
    for (name, (ts, *_)), (next_name, (next_ts, *_)) in zip(ordered, ordered[1:], strict=False):
        windows.append((f"{name} → {next_name}", ts, next_ts))
    result = {"marks_ms": {n: round((t - ordered[0][1][0]) / 1000, 1) for n, (t, *_) in ordered},
              "thread": threads.get(worker, "?"), "windows": []}  # fmt: skip
    for label, start, end in windows:
        inside = [s for s in samples if start <= s[0] < end]
        if end - start < 20_000:  # shorter than 20 ms: not worth a row
            continue
        by_category: Counter = Counter()
        by_function: Counter = Counter()
        by_activity: Counter = Counter()
        cache: dict = {}
        previous = start
        for ts, node_id, profile_id in inside:
            frame = profiles[profile_id]["nodes"].get(node_id, {}).get("callFrame", {})
            weight = (ts - previous) / 1000
            previous = ts
            by_category[_category(frame)] += weight
            activity = _activity(profiles[profile_id], node_id, names, cache)
            by_activity[activity or _category(frame)] += weight
            function = frame.get("functionName") or "(anonymous)"
            if names and function.startswith("wasm-function["):
                index = int(function[len("wasm-function[") : -1])
                function = names.get(index, function)
            by_function[function[:60]] += weight
        result["windows"].append({
            "window": label,
            "ms": round((end - start) / 1000),
            "by_category_ms": {k: round(v) for k, v in by_category.most_common(8)},
            "by_activity_ms": {k: round(v) for k, v in by_activity.most_common(8)},
            "top_functions_ms": {k: round(v) for k, v in by_function.most_common(12)},
        })  # fmt: skip
    # background threads: wasm compilation and GC helpers during the start
    busy = defaultdict(float)
    for e in events:
        if e.get("ph") == "X" and e.get("dur") and "wasm" in e.get("name", "").lower():
            busy[threads.get((e["pid"], e["tid"]), str(e["tid"])) + ": " + e["name"]] += (
                e["dur"] / 1000
            )
    result["wasm_events_ms"] = {
        k: round(v) for k, v in sorted(busy.items(), key=lambda kv: -kv[1])[:12]
    }
    return result
