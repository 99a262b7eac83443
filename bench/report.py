"""Turn bench/results/bench.json into a Markdown report (results/report.md) and PNG charts."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from browser import category, gzip_size

RESULTS = Path(__file__).resolve().parent / "results"
BASE_ORDER = (
    "stock", "lite-env", "lite-env-late", "lite-env-all", "lite-env-none", "lite-env-kernel",
    "lite-env-snapshot", "lite-env-eager", "floor",
)  # fmt: skip
#: Each variant as it is, then served compressed (sites.COMPRESSED); then over a slower link
#: (`@<Mbit/s>`, see run.served_over), in the order the loads came.
ORDER = (*BASE_ORDER, *(f"{v}+gz" for v in BASE_ORDER))


#: The start-time ratios reported (for each way the variants were served).
RATIOS = (
    ("lite-env", "stock"), ("lite-env-kernel", "stock"), ("lite-env-all", "stock"),
    ("lite-env-none", "stock"), ("lite-env-snapshot", "stock"), ("lite-env", "floor"),
    ("lite-env-snapshot", "floor"), ("stock", "floor"), ("lite-env-all", "lite-env"),
    ("lite-env-none", "lite-env"),
    ("lite-env", "lite-env-late"), ("lite-env-late", "stock"), ("lite-env-late", "floor"),
)  # fmt: skip


def label(variant: str) -> str:
    """A variant's label; `@<Mbit/s>` served over a link of that bandwidth."""
    site, _, mbit = variant.partition("@")
    return LABELS.get(site, site) + (f", over {mbit} Mbit/s" if mbit else "")


def ordered_variants(loads: list[dict]) -> list[str]:
    """The variants of the loads: those of ORDER in its order, then the others as they came."""
    seen = list(dict.fromkeys(ld["variant"] for ld in loads))
    return [v for v in ORDER if v in seen] + [v for v in seen if v not in ORDER]


LABELS = {
    "stock": "(a) stock JupyterLite (micropip + piplite, offline)",
    "lite-env": "(b) lite-env, bytecode imported (default)",
    "lite-env-all": "(b2) lite-env, bytecode all",
    "lite-env-none": "(b3) lite-env, bytecode none (stdlib too)",
    "lite-env-kernel": "(b4) lite-env, kernel packages only (stock's set)",
    "lite-env-snapshot": "(b5) lite-env + memory snapshot",
    "lite-env-eager": "(b6) lite-env, no lazy packages",
    "lite-env-late": "(b8) lite-env, kernel worker made with the kernel (no early start)",
    "floor": "(c) floor: runtime only",
}
LABELS |= {f"{v}+gz": f"{label}, served gzip" for v, label in LABELS.items()}
#: A load is flagged noisy when other processes used more than this share of the CPUs.
NOISY_SHARE = 0.25


def stats(values: list[float]) -> dict | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {
        "n": len(values),
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
    }


def start_metric(load: dict) -> float | None:
    """The kernel-start time of a load: idle, or for the floor the runtime's readiness."""
    return load["runtime_ready_ms"] if load["runtime_ready_ms"] is not None else load["idle_ms"]


def summarize(data: dict) -> dict:
    loads = [ld for ld in data["loads"] if ld["ok"]]
    failed = [ld for ld in data["loads"] if not ld["ok"]]
    sites = {name: Path(info["folder"]) for name, info in data.get("sites", {}).items()}
    summary: dict = {}
    for variant in ordered_variants(data["loads"]):
        for kind in ("cold", "warm"):
            group = [ld for ld in loads if ld["variant"] == variant and ld["kind"] == kind]
            if not group:
                continue
            row = {
                "start_ms": stats([start_metric(ld) for ld in group]),
                "first_result_ms": stats([ld["first_result_ms"] for ld in group]),
                "cell_ms": stats([ld["cell_ms"] for ld in group]),
                "launcher_ms": stats([ld["launcher_ms"] for ld in group]),
                "requests": stats([ld["server_requests"] for ld in group]),
                "browser_requests": stats([ld["browser_requests"] for ld in group]),
                "bytes": stats([ld["bytes_sent"] for ld in group]),
                "foreign_share": stats([ld["load"]["foreign_share"] for ld in group]),
                "noisy": sum(ld["load"]["foreign_share"] > NOISY_SHARE for ld in group),
                "foreign_requests": sorted({u for ld in group for u in ld["foreign_requests"]}),
                "failed": sum(
                    1 for ld in failed if ld["variant"] == variant and ld["kind"] == kind
                ),
            }
            site = variant.partition("@")[0]
            if kind == "cold" and site in sites:
                row["transfer"] = transfer(group[0], sites[site])
            summary[f"{variant}/{kind}"] = row
    return summary


def transfer(load: dict, site: Path) -> dict:
    """What one cold load fetched, by kind: raw bytes and what gzip -6 would make of them."""
    by_kind: dict[str, dict] = {}
    for path, status, sent, _ in load["served"]:
        if status != 200:
            continue
        raw, gz = gzip_size(site, path)
        entry = by_kind.setdefault(category(path), {"files": 0, "raw": 0, "gzip": 0})
        entry["files"] += 1
        entry["raw"] += sent
        entry["gzip"] += gz if raw == sent else sent
    total = {
        "files": sum(e["files"] for e in by_kind.values()),
        "raw": sum(e["raw"] for e in by_kind.values()),
        "gzip": sum(e["gzip"] for e in by_kind.values()),
    }
    notable = {}
    for path, status, _, _ in load["served"]:
        if status == 200 and (
            path.endswith((".wasm", ".zip"))
            or "/image-" in path
            or path.endswith("pyodide-lock.json")
            or "snapshot" in path
        ):
            notable[path] = dict(zip(("raw", "gzip"), gzip_size(site, path), strict=True))
    return {"by_kind": by_kind, "total": total, "notable": notable}


def _s(ms: float | None) -> str:
    return "–" if ms is None else f"{ms / 1000:.2f}"


def _triple(entry: dict | None, *, bold: bool = True) -> str:
    if not entry:
        return "–"
    mid = _s(entry["median"])
    return f"{_s(entry['min'])} / {'**' + mid + '**' if bold else mid} / {_s(entry['max'])}"


def _mb(value: float) -> str:
    return f"{value / 1e6:.1f}"


def markdown(data: dict, summary: dict) -> str:
    lines = []
    machine = data["machine"]
    lines += [
        "# Benchmark results",
        "",
        f"Run {data['started']} → {data['finished']}, `{data['command']}`"
        + (
            f" (the parts it did not redo come from `{'`, `'.join(data['previous_commands'])}`)."
            if data.get("previous_commands")
            else "."
        ),
        f"Machine: {machine['cores']} cores, {machine['cpu_model']}, {machine['ram_gb']} GB RAM;"
        f" {machine['chromium']}; Playwright {machine['playwright']}; node {machine['node']}"
        + (f"; lite-env commit {machine['commit'][:10]}." if machine.get("commit") else "."),
        "",
        "## Kernel start (headless Chromium, site on 127.0.0.1)",
        "",
        "Seconds from navigation start; min / **median** / max over the runs. *Start* is the"
        " kernel's first `Idle` (for the floor: Pyodide's `loadPyodide` resolved in the"
        " kernel worker). *First result* is start + the time from Shift+Enter to the output"
        " of `print(6*7)`. Requests and bytes are what the server sent (median per load);"
        " *gzip* is what the same files would weigh served with gzip -6 (files that do not"
        " shrink counted as they are).",
        "",
        "| variant | load | start (s) | first result (s) | requests | MB sent | MB if gzip"
        " | noisy runs |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key, row in summary.items():
        variant, kind = key.split("/")
        gzip_mb = (
            _mb(row["transfer"]["total"]["gzip"]) if kind == "cold" and "transfer" in row else "–"
        )
        requests = row["requests"]["median"] if row["requests"] else "–"
        lines.append(
            f"| {label(variant)} | {kind} | {_triple(row['start_ms'])} |"
            f" {_triple(row['first_result_ms'])} | {requests:g} |"
            f" {_mb(row['bytes']['median'])} | {gzip_mb} |"
            f" {row['noisy']}/{row['start_ms']['n']}"
            + (f" ({row['failed']} failed)" if row["failed"] else "")
            + " |"
        )
    lines += ["", "Ratios of medians (start time):", ""]
    lines += ["| ratio | cold | warm |", "| --- | --- | --- |"]
    # the same comparisons for every way of serving (compressed, over a slower link) in the run
    ways = dict.fromkeys(v.removeprefix("stock") for v in ordered_variants(data["loads"])
                         if v.startswith("stock"))  # fmt: skip
    for a, b in [(a + way, b + way) for way in ways for a, b in RATIOS]:
        if f"{a}/cold" not in summary or f"{b}/cold" not in summary:
            continue
        cells = []
        for kind in ("cold", "warm"):
            x, y = summary.get(f"{a}/{kind}"), summary.get(f"{b}/{kind}")
            if x and y and x["start_ms"] and y["start_ms"]:
                cells.append(f"{x['start_ms']['median'] / y['start_ms']['median']:.2f}")
            else:
                cells.append("–")
        lines.append(f"| {a} / {b} | {cells[0]} | {cells[1]} |")
    lines += ["", "Minus the front end (start − the moment the launcher appeared, medians):", ""]
    lines += ["| variant | cold | warm |", "| --- | --- | --- |"]
    for variant in ordered_variants(data["loads"]):
        cells = []
        for kind in ("cold", "warm"):
            group = [
                ld for ld in data["loads"]
                if ld["ok"] and ld["variant"] == variant and ld["kind"] == kind
                and ld["launcher_ms"]
            ]  # fmt: skip
            values = [start_metric(ld) - ld["launcher_ms"] for ld in group]
            cells.append(_s(statistics.median(values)) if values else "–")
        if any(c != "–" for c in cells):
            lines.append(f"| {variant} | {cells[0]} | {cells[1]} |")

    lines += ["", "### What a cold load transfers (one load; raw bytes, and gzip -6)", ""]
    lines += [
        "| variant | front end | runtime | wheels | image | total |",
        "| --- |" + " --- |" * 5,
    ]
    for key, row in summary.items():
        if "transfer" not in row:
            continue
        kinds = row["transfer"]["by_kind"]

        def cell(kind: str, kinds: dict = kinds) -> str:
            entry = kinds.get(kind)
            if not entry:
                return "–"
            return f"{_mb(entry['raw'])} → {_mb(entry['gzip'])} MB ({entry['files']})"

        total = row["transfer"]["total"]
        lines.append(
            f"| {key.split('/')[0]} | {cell('frontend')} | {cell('runtime')} | {cell('wheel')}"
            f" | {cell('image')} | {_mb(total['raw'])} → {_mb(total['gzip'])} MB"
            f" ({total['files']}) |"
        )
    notable = {}
    for row in summary.values():
        notable.update(row.get("transfer", {}).get("notable", {}))
    if notable:
        lines += ["", "| file | raw | gzip -6 |", "| --- | --- | --- |"]
        for path, sizes in sorted(notable.items()):
            lines.append(f"| `{path}` | {sizes['raw']:,} | {sizes['gzip']:,} |")
    foreign = {k: v["foreign_requests"] for k, v in summary.items() if v["foreign_requests"]}
    lines += ["", f"Requests that left 127.0.0.1: {foreign or 'none'}."]
    failed = [ld for ld in data["loads"] if not ld["ok"]]
    if failed:
        lines += ["", "Failed loads:", ""]
        lines += [
            f"- {ld['variant']} {ld['kind']} rep {ld['rep']}: `{ld['error']}`" for ld in failed
        ]

    if data.get("profile"):
        lines += profile_markdown(data["profile"])
    if data.get("science"):
        lines += science_markdown(data["science"])
    if data.get("conda"):
        lines += conda_markdown(data["conda"])
    if data.get("browsers"):
        lines += browsers_markdown(data["browsers"])
    if data.get("build"):
        lines += build_markdown(data["build"])
    return "\n".join(lines) + "\n"


def science_markdown(science: dict) -> list[str]:
    """The data-science case: kernel start, then the first cell importing the stack."""
    lines = ["", "## The data-science case (cold loads)", ""]
    lines += [
        f"The first cell after idle: `{science['cell'].splitlines()[0]}`. Seconds, min /"
        " **median** / max; *cell* is Shift+Enter to the output.",
        "",
        "| variant | start (s) | cell (s) | first result (s) | MB sent | noisy runs |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    loads = [ld for ld in science["loads"] if ld["ok"]]
    for variant in [v for v in ORDER if any(ld["variant"] == v for ld in loads)]:
        group = [ld for ld in loads if ld["variant"] == variant]
        noisy = sum(ld["load"]["foreign_share"] > NOISY_SHARE for ld in group)
        mb = statistics.median(ld["bytes_sent"] for ld in group)
        lines.append(
            f"| {label(variant)} | {_triple(stats([ld['idle_ms'] for ld in group]))}"
            f" | {_triple(stats([ld['cell_ms'] for ld in group]))}"
            f" | {_triple(stats([ld['first_result_ms'] for ld in group]))}"
            f" | {_mb(mb)} | {noisy}/{len(group)} |"
        )
    failed = [ld for ld in science["loads"] if not ld["ok"]]
    lines += [f"- failed: {ld['variant']} rep {ld['rep']}: `{ld['error']}`" for ld in failed]
    return lines


def conda_markdown(conda: dict) -> list[str]:
    """`%conda install` at run time: the first cell after idle installs a package and uses it."""
    lines = ["", "## `%conda install` in the kernel (cold loads)", ""]
    lines += [
        "A site of the kernel's packages carrying its channel (`--channel-in-site`); the first"
        " cell after idle is `%conda install NAME`, then imports and uses it. Seconds, min /"
        " **median** / max; *cell* is Shift+Enter to the output (the solver's module, the"
        " channel's repodata and the package fetched, checked and written).",
        "",
        "| package | start (s) | cell: install + import (s) | MB sent | noisy runs |",
        "| --- | --- | --- | --- | --- |",
    ]
    loads = [ld for ld in conda["loads"] if ld["ok"]]
    for case in conda["cells"]:
        group = [ld for ld in loads if ld["case"] == case]
        if not group:
            continue
        noisy = sum(ld["load"]["foreign_share"] > NOISY_SHARE for ld in group)
        mb = statistics.median(ld["bytes_sent"] for ld in group)
        lines.append(
            f"| {case} | {_triple(stats([ld['idle_ms'] for ld in group]))}"
            f" | {_triple(stats([ld['cell_ms'] for ld in group]))}"
            f" | {_mb(mb)} | {noisy}/{len(group)} |"
        )
    failed = [ld for ld in conda["loads"] if not ld["ok"]]
    lines += [f"- failed: {ld['case']} rep {ld['rep']}: `{ld['error']}`" for ld in failed]
    return lines


def browsers_markdown(browsers: dict) -> list[str]:
    """Firefox beside Chromium, driven alike through lite-env's checks."""
    lines = ["", "## Firefox and Chromium (cold loads, lite-env's checks)", ""]
    lines += [
        "Both browsers driven the same way (`lite-env check`, `--browser firefox`: a fresh"
        " profile, the site served by lite-env's server). Seconds, min / **median** / max;"
        " cells from Shift+Enter to the output: `print(6*7)`, then (lite-env) the first"
        f" `{browsers['cells'][1].splitlines()[0]}`, two lazy packages.",
        "",
        "| variant | browser | start (s) | first cell (s) | lazy import cell (s) |",
        "| --- | --- | --- | --- | --- |",
    ]
    loads = [ld for ld in browsers["loads"] if ld["ok"]]
    for variant in dict.fromkeys(ld["variant"] for ld in browsers["loads"]):
        for browser in ("chromium", "firefox"):
            group = [ld for ld in loads if ld["variant"] == variant and ld["browser"] == browser]
            if not group:
                continue
            cell = [
                _triple(stats([ld["cell_s"][i] * 1000 for ld in group if len(ld["cell_s"]) > i]))
                for i in (0, 1)
            ]
            start = _triple(stats([ld["idle_s"] * 1000 for ld in group]))
            lines.append(f"| {variant} | {browser} | {start} | {cell[0]} | {cell[1]} |")
    failed = [ld for ld in browsers["loads"] if not ld["ok"]]
    lines += [f"- failed: {ld['variant']} {ld['browser']}: `{ld['error']}`" for ld in failed]
    return lines


PHASES = (
    # (label, start mark, end mark)
    ("front end: navigation → kernel worker evaluates pyodideUrl", None, "probe-evaluated"),
    ("import loader + pyodide.mjs", "probe-evaluated", "target-imported"),
    ("runtime download + wasm instantiate (loadPyodide → fsInit)", "loadPyodide-called",
     "fsInit-called|fsInit-probe"),
    ("fsInit: wait for the image (fetch, sha256, gunzip)", "fsInit-called", "image-ready"),
    ("fsInit: write the image into MEMFS", "image-ready", "image-written"),
    ("Python start inside loadPyodide (after fsInit)", "fsInit-probe", "loadPyodide-resolved"),
    ("kernel: loadPackage(micropip)", "loadPackage [\"micropip\"]:start",
     "loadPackage [\"micropip\"]:end"),
    ("kernel: micropip.install(piplite)", "runPythonAsync import micropip:start",
     "runPythonAsync import micropip:end"),
    ("kernel: import piplite.piplite", "runPythonAsync import piplite.piplite:start",
     "runPythonAsync import piplite.piplite:end"),
    ("kernel: piplite installs + import pyodide_kernel",
     "runPythonAsync kernel (installs + import pyodide_kernel):start",
     "runPythonAsync kernel (installs + import pyodide_kernel):end"),
    ("→ Idle in the page (initGlobals, messages, status bar)",
     "runPythonAsync kernel (installs + import pyodide_kernel):end", "@idle"),
)  # fmt: skip


def _mark(load: dict, name: str | None) -> float | None:
    if name is None:
        return 0.0
    if name == "@idle":
        return load["idle_ms"]
    for option in name.split("|"):
        if option in load["marks"]:
            return load["marks"][option]
    return None


def phase_table(loads: list[dict]) -> list[tuple[str, float | None]]:
    rows = []
    for label, start, end in PHASES:
        values = []
        for load in loads:
            a, b = _mark(load, start), _mark(load, end)
            if a is not None and b is not None:
                values.append(b - a)
        rows.append((label, statistics.median(values) if values else None))
    return rows


def profile_markdown(profile: dict) -> list[str]:
    lines = ["", "## Where the kernel start goes (probe timestamps in the worker)", ""]
    variants = [v for v in ORDER if any(ld["variant"] == v for ld in profile["loads"])]
    marks_only = {
        v: [
            ld
            for ld in profile["loads"]
            if ld["variant"] == v and ld["ok"] and not ld.get("imports")
        ]
        for v in variants
    }
    header = (
        "| phase (median ms) | "
        + " | ".join(f"{v} (n={len(marks_only[v])})" for v in variants)
        + " |"
    )
    lines += [header, "| --- |" + " --- |" * len(variants)]
    tables = {v: dict(phase_table(marks_only[v])) for v in variants}
    for label, _, _ in PHASES:
        cells = [tables[v].get(label) for v in variants]
        if all(c is None for c in cells):
            continue
        lines.append(
            f"| {label} | " + " | ".join("–" if c is None else f"{c:.0f}" for c in cells) + " |"
        )
    idle = [
        statistics.median([ld["idle_ms"] for ld in marks_only[v]]) if marks_only[v] else None
        for v in variants
    ]
    lines.append("| **kernel idle** | " + " | ".join(
        "–" if i is None else f"**{i:.0f}**" for i in idle) + " |")  # fmt: skip
    lines += ["", "Worker resource timing (median ms since navigation: request start → end):", ""]
    for v in variants:
        spans = {}
        for load in marks_only[v]:
            for r in load.get("resources", []):
                name = r["name"].split("/")[-1]
                key = (
                    "image chunks (all)"
                    if "/static/lite-env/" in r["name"]
                    and name.endswith(".gz")
                    and "snapshot" not in name
                    else name
                )
                if key.endswith(".whl") or "/pypi/" in r["name"]:
                    key = "wheels and indexes (all)"
                if "/api/drive" in r["name"]:
                    key = "/api/drive (DriveFS, all)"
                entry = spans.setdefault(key, {})
                entry.setdefault("start", []).append(r["start"])
                entry.setdefault("end", []).append(r["end"])
                entry.setdefault("count", []).append(1)
        if not spans:
            continue
        lines.append(f"- **{v}**: " + "; ".join(
            f"{k} {statistics.median(s['start']):.0f}→{statistics.median(s['end']):.0f}"
            for k, s in sorted(spans.items(), key=lambda kv: statistics.median(kv[1]["start"]))
            if k not in ("bench-probe.mjs", "marks")
        ))  # fmt: skip
    for variant, trace in (profile.get("traces") or {}).items():
        if trace.get("error"):
            lines += ["", f"Trace of {variant} failed: `{trace['error']}`"]
            continue
        lines += [
            "",
            f"Chrome trace of one cold start, **{variant}** (kernel idle at"
            f" {trace.get('idle_ms', 0) / 1000:.2f} s): the worker thread's CPU samples between"
            " the probe's marks, by activity (ms; *compile* = samples under"
            " Py_CompileStringObject/_PyAST_Compile, *unmarshal* = under PyMarshal_Read*,"
            " *wasm* = other interpreter work, *(program)* = V8 native work such as lazy wasm"
            " compilation):",
            "",
            "| window | ms | by activity |",
            "| --- | --- | --- |",
        ]
        for window in trace["windows"]:
            activity = ", ".join(f"{k} {v}" for k, v in window["by_activity_ms"].items() if v >= 5)
            lines.append(f"| {window['window']} | {window['ms']} | {activity} |")
        wasm_events = trace.get("wasm_events_ms") or {}
        if wasm_events:
            lines += ["", "V8 wasm compilation during the load (ms of thread time): " + ", ".join(
                f"{k} {v}" for k, v in list(wasm_events.items())[:5])]  # fmt: skip
    for load in profile["loads"]:
        if load.get("imports"):
            imports = load["imports"]
            lines += [
                "",
                f"Python import profile, {load['variant']} (one run with the profiler on: "
                f"{imports['modules']} modules executed; bytecode compiled for "
                f"{imports['compiled_modules']} site-packages modules in"
                f" {imports['compile_s']:.2f} s and {imports.get('zip_compiled_modules', '?')}"
                f" stdlib modules (zip) in {imports.get('zip_compile_s', 0):.2f} s;"
                f" get_code total {imports['get_code_s']:.2f} s). Module execution time"
                " (self, s) by top-level package:",
                "",
                ", ".join(
                    f"{k} {v:.2f}" for k, v in list(imports["exec_self_s_by_package"].items())[:15]
                ),  # fmt: skip
                "",
                "Slowest modules, self: "
                + ", ".join(f"{n} {t:.2f}" for n, t in imports["slowest_self"][:10]),  # fmt: skip
            ]
    return lines


def build_markdown(build: dict) -> list[str]:
    lines = ["", "## The build", ""]
    stages = build.get("stages", {})
    scenarios = [k for k in stages if k.startswith("build:")]
    if scenarios:
        names = []
        for key in scenarios:
            for name in stages[key]["stages_s"]:
                if name not in names:
                    names.append(name)
        lines += [
            "`lite_env.pipeline.build` of the default environment"
            f" ({stages.get('fine:cold', {}).get('packages', '?')} packages), per stage (s):",
            "",
            "| stage | " + " | ".join(k.split(":")[1] for k in scenarios) + " |",
            "| --- |" + " --- |" * len(scenarios),
        ]
        for name in names:
            cells = [stages[k]["stages_s"].get(name) for k in scenarios]
            lines.append(
                f"| {name} | " + " | ".join("–" if c is None else f"{c:.2f}" for c in cells) + " |"
            )
    for key in ("fine:cold", "fine:warm"):
        if key in stages:
            fine = stages[key]
            detail = fine["install_detail"]
            populate = detail.get("populate_cache") or {}
            link = detail.get("link") or {}
            lines += [
                "",
                f"Finer, {key.split(':')[1]} cache: solve {fine['solve_s']:.3f} s, write the lock"
                f" {fine['write_lock_s']:.3f} s, install {fine['install_s']:.2f} s (cache"
                f" population — fetch + extract — ends at {populate.get('last_end_s', 0):.2f} s,"
                f" {populate.get('sum_s', 0):.2f} s summed over {populate.get('count', 0)}"
                f" packages in parallel; linking ends at {link.get('last_end_s', 0):.2f} s).",
            ]
    scaling = build.get("scaling")
    if scaling:
        lines += [
            "",
            f"Pack time and image size against the environment's size ({scaling['method']}):",
            "",
            "| packages | files | unpacked MB | image MB (gzip chunks) | install s | pack s"
            " | pack MB/s (unpacked) | cp -r MB/s | tar·gzip -9 MB/s | tar·gzip -6 MB/s"
            " | dd write MB/s |",
            "| --- |" + " --- |" * 10,
        ]
        for row in scaling["sizes"]:
            ref = row["reference"]
            lines.append(
                f"| {row['packages']} | {row['image_files']:,} | {_mb(row['image_raw'])} |"
                f" {_mb(row['image_gz'])} | {row['install_s']:.2f} | {row['pack_s']:.2f} |"
                f" {row['pack_MBps_raw']} | {ref['cp_r_MBps']} | {ref['gzip9_MBps']} |"
                f" {ref['gzip6_MBps']} | {ref['dd_MBps']} |"
            )
    return lines


def chart(data: dict, summary: dict, path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    variants = [v for v in ORDER if f"{v}/cold" in summary]
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(17, 5.8), gridspec_kw={"width_ratios": [3, 1.6]}
    )
    width = 0.38
    for offset, kind, color in ((-width / 2, "cold", "#3b6ea8"), (width / 2, "warm", "#e59b3a")):
        meds, lows, highs, xs = [], [], [], []
        for i, v in enumerate(variants):
            row = summary.get(f"{v}/{kind}")
            if not row or not row["start_ms"]:
                continue
            s = row["start_ms"]
            xs.append(i + offset)
            meds.append(s["median"] / 1000)
            lows.append((s["median"] - s["min"]) / 1000)
            highs.append((s["max"] - s["median"]) / 1000)
        left.bar(xs, meds, width, yerr=[lows, highs], capsize=3, color=color, label=kind)
        for x, m in zip(xs, meds, strict=True):
            left.text(x, 0.25, f"{m:.1f}", ha="center", fontsize=8, color="white",
                      fontweight="bold")  # fmt: skip
    launcher = [
        summary[f"{v}/cold"]["launcher_ms"]["median"] / 1000
        for v in variants if summary[f"{v}/cold"].get("launcher_ms")
    ]  # fmt: skip
    if launcher:
        left.axhline(statistics.median(launcher), color="grey", ls="--", lw=1)
        left.text(len(variants) - 0.5, statistics.median(launcher) + 0.1,
                  "launcher shown (front end)", ha="right", fontsize=8, color="grey")  # fmt: skip
    left.set_xticks(range(len(variants)), variants, rotation=20, ha="right")
    left.set_ylabel("seconds from navigation (median, min–max)")
    left.set_title("Kernel start: idle (floor: runtime ready)")
    left.legend()
    # right: phase breakdown of the profile
    profile = data.get("profile")
    if profile:
        pv = [v for v in ORDER if any(ld["variant"] == v and ld["ok"] for ld in profile["loads"])]
        bottoms = [0.0] * len(pv)
        colors = plt.cm.tab20.colors
        for j, (label, _, _) in enumerate(PHASES):
            heights = []
            for v in pv:
                loads = [ld for ld in profile["loads"]
                         if ld["variant"] == v and ld["ok"] and not ld.get("imports")]  # fmt: skip
                value = dict(phase_table(loads)).get(label)
                heights.append((value or 0) / 1000)
            if not any(heights):
                continue
            right.bar(range(len(pv)), heights, 0.6, bottom=bottoms, label=label,
                      color=colors[j % len(colors)])  # fmt: skip
            bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
        right.set_xticks(range(len(pv)), pv, rotation=20, ha="right")
        right.set_ylabel("seconds (medians of probe runs)")
        right.set_title("Where the cold start goes")
        right.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(data: dict) -> dict:
    summary = summarize(data)
    data["summary"] = summary
    (RESULTS / "report.md").write_text(markdown(data, summary))
    chart(data, summary, RESULTS / "kernel-start.png")
    return summary


if __name__ == "__main__":
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS / "bench.json"
    data = json.loads(source.read_text())
    write_report(data)
    print((RESULTS / "report.md").read_text())
