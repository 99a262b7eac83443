"""Benchmark lite-env: kernel start in headless Chromium (stock JupyterLite, lite-env variants,
the runtime's floor), a profile of the start, and the build's stages and scaling.

    python bench/run.py                 # everything, 5 interleaved cold+warm pairs per variant
    python bench/run.py --runs 7
    python bench/run.py --quick         # 1 pair of stock, lite-env and floor; small scaling
    python bench/run.py --only kernel   # or: profile, science, conda, browsers, build
    python bench/run.py --report        # only redo results/report.md and the chart

Results: bench/results/bench.json (everything raw), report.md (tables), kernel-start.png.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from browser import run_pair  # noqa: E402
from browsers import FIRST_CELL, LAZY_CELL, browser_load  # noqa: E402
from machine import machine_info  # noqa: E402
from probe import make_probed_site  # noqa: E402
from report import RESULTS, write_report  # noqa: E402
from sites import LITE_ENV_VARIANTS, SITES, build_sites  # noqa: E402

ALL_VARIANTS = [
    "stock",
    *(v for v in LITE_ENV_VARIANTS if v not in ("lite-env-eager", "lite-env-conda")),
    "floor",
]
QUICK_VARIANTS = ["stock", "lite-env", "floor"]
PROFILED = ["stock", "lite-env", "lite-env-none", "lite-env-snapshot"]
TRACED = ["stock", "lite-env"]
#: The data-science case: the default environment with its packages lazy (as shipped) or all
#: written before Python starts, and a first cell importing the stack after idle.
SCIENCE_VARIANTS = ["lite-env", "lite-env-eager"]
SCIENCE_CELL = (
    "import numpy, pandas, matplotlib.pyplot as plt\n"
    "print('stack', numpy.__version__, pandas.__version__, plt.get_backend())",
    "stack ",
)

#: `%conda install` at run time: a site of the kernel's packages with its channel; the first
#: cell after idle installs a package it lacks and uses it (the solver's module, the channel's
#: repodata and the package are fetched by that cell).
CONDA_VARIANT = "lite-env-conda"
CONDA_CELLS = {
    "pure package (tabulate)": (
        "%conda install tabulate\nimport tabulate\n"
        "print('conda-ok', tabulate.tabulate([[1, 2]]).splitlines()[1])",
        "conda-ok ",
    ),
    "shared library (pyyaml, libyaml)": (
        "%conda install pyyaml\nimport yaml\nprint('conda-ok', yaml.__with_libyaml__)",
        "conda-ok True",
    ),
}

#: Firefox beside Chromium, both through lite-env's checks (bench/browsers.py).
BROWSER_VARIANTS = ["stock", "lite-env"]


def served_over(variant: str) -> tuple[str, float | None]:
    """A kernel variant's site and link: `lite-env+gz@50` is the lite-env+gz site served over
    a shared 50 Mbit/s link (bench/browser.py), plain names over loopback."""
    site, _, mbit = variant.partition("@")
    return site, float(mbit) if mbit else None


def log(message: str) -> None:
    print(message, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="cold+warm pairs per variant")
    parser.add_argument("--profile-runs", type=int, default=3, help="probe runs per variant")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 pair, 3 variants")
    parser.add_argument("--variants", help="comma-separated subset of: " + ",".join(ALL_VARIANTS))
    parser.add_argument(
        "--only", help="comma-separated parts: kernel, profile, science, conda, browsers, build"
    )
    parser.add_argument("--reuse-sites", action="store_true", help="do not rebuild the sites")
    parser.add_argument("--report", action="store_true", help="only rewrite the report")
    parser.add_argument("--timeout", type=float, default=180, help="seconds per page load")

    args = parser.parse_args(argv)

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "bench.json"
    if args.report:
        write_report(json.loads(out.read_text()))
        log(f"wrote {RESULTS / 'report.md'}")
        return 0
    from lite_env.cache import cache_dir

    cache = cache_dir()
    runs = 1 if args.quick else args.runs
    profile_runs = 1 if args.quick else args.profile_runs
    variants = (
        args.variants.split(",") if args.variants else QUICK_VARIANTS if args.quick
        else ALL_VARIANTS
    )  # fmt: skip
    parts = (
        set(args.only.split(",")) if args.only
        else {"kernel", "profile", "science", "conda", "browsers", "build"}
    )  # fmt: skip
    data = {
        "command": " ".join(["python", "bench/run.py", *sys.argv[1:]] if argv is None else argv),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "finished": None,
        "machine": machine_info(),
        "cache_dir": str(cache),
        "runs": runs,
        "sites": {},
        "loads": [],
        "profile": None,
        "science": None,
        "conda": None,
        "browsers": None,
        "build": None,
    }
    log(f"machine: {data['machine']}")
    if args.only and out.exists():  # keep the parts this run does not redo
        previous = json.loads(out.read_text())
        if "kernel" not in parts:
            data["loads"] = previous.get("loads", [])
            data["runs"] = previous.get("runs", runs)
        for part in ("profile", "science", "conda", "browsers", "build"):
            if part not in parts:
                data[part] = previous.get(part)
        if args.reuse_sites:
            data["sites"] = previous.get("sites", {})
        data["previous_commands"] = [
            *previous.get("previous_commands", []),
            previous.get("command"),
        ]

    def save() -> None:
        data["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
        out.write_text(json.dumps(data, indent=1, default=str))

    if parts & {"kernel", "profile", "science", "conda", "browsers"}:
        needed = {served_over(v)[0] for v in variants} if "kernel" in parts else set()
        needed |= set(PROFILED) & set(variants) if "profile" in parts else set()
        needed |= set(SCIENCE_VARIANTS) if "science" in parts else set()
        needed |= {CONDA_VARIANT} if "conda" in parts else set()
        needed |= set(BROWSER_VARIANTS) if "browsers" in parts else set()
        sites_json = SITES.parent / "sites.json"
        if args.reuse_sites and sites_json.exists():
            known = json.loads(sites_json.read_text())
            data["sites"] = {k: v for k, v in known.items() if k in needed}
        missing = sorted(needed - set(data["sites"]))
        if missing:
            built = build_sites(missing, cache_dir=cache, log=log)
            data["sites"].update({name: asdict(info) for name, info in built.items()})
        save()

    from playwright.sync_api import sync_playwright

    if "kernel" in parts:
        with sync_playwright() as playwright:
            for rep in range(runs):
                order = variants[rep % len(variants) :] + variants[: rep % len(variants)]
                log(f"[kernel] rep {rep + 1}/{runs}: {' '.join(order)}")
                for variant in order:
                    site, mbit = served_over(variant)
                    pair = run_pair(
                        playwright, variant, Path(data["sites"][site]["folder"]), rep,
                        floor=site.startswith("floor"), timeout=args.timeout, mbit_per_s=mbit,
                        log=log,
                    )  # fmt: skip
                    data["loads"] += [asdict(load) for load in pair]
                    save()

    if "profile" in parts:
        profiled = [v for v in PROFILED if v in data["sites"]]
        probe_sites = {}
        notes = []
        for variant in profiled:
            source = Path(data["sites"][variant]["folder"])
            for imports in (False, True):
                name = f"{variant}~probe" + ("-imports" if imports else "")
                notes += make_probed_site(source, SITES / name, imports=imports)
                probe_sites[(variant, imports)] = SITES / name
        data["profile"] = {"loads": [], "notes": sorted(set(notes))}
        with sync_playwright() as playwright:
            schedule = [(rep, False) for rep in range(profile_runs)] + [(profile_runs, True)]
            for rep, imports in schedule:
                order = profiled[rep % len(profiled) :] + profiled[: rep % len(profiled)]
                log(f"[profile] rep {rep + 1} ({'imports' if imports else 'marks'}): {order}")
                for variant in order:
                    pair = run_pair(
                        playwright, variant, probe_sites[(variant, imports)], rep, floor=False,
                        warm=False, timeout=args.timeout, log=log,
                    )  # fmt: skip
                    data["profile"]["loads"] += [asdict(load) for load in pair]
                    save()

        from trace import trace_start

        data["profile"]["traces"] = {}
        with sync_playwright() as playwright:
            for variant in [v for v in TRACED if (v, False) in probe_sites]:
                log(f"[trace] {variant}")
                try:
                    summary = trace_start(
                        playwright, probe_sites[(variant, False)],
                        SITES.parent / f"trace-{variant}.json", timeout=args.timeout,
                    )  # fmt: skip
                except Exception as error:  # noqa: BLE001 - a failed trace is reported
                    summary = {"error": f"{type(error).__name__}: {error}"[:500]}
                data["profile"]["traces"][variant] = summary
                save()

    if "science" in parts:
        data["science"] = {"cell": SCIENCE_CELL[0], "loads": []}
        with sync_playwright() as playwright:
            for rep in range(runs):
                shift = rep % len(SCIENCE_VARIANTS)
                order = SCIENCE_VARIANTS[shift:] + SCIENCE_VARIANTS[:shift]
                log(f"[science] rep {rep + 1}/{runs}: {' '.join(order)}")
                for variant in order:
                    pair = run_pair(
                        playwright, variant, Path(data["sites"][variant]["folder"]), rep,
                        floor=False, warm=False, cell=SCIENCE_CELL, timeout=args.timeout,
                        log=log,
                    )  # fmt: skip
                    data["science"]["loads"] += [asdict(load) for load in pair]
                    save()

    if "conda" in parts:
        data["conda"] = {"cells": {k: v[0] for k, v in CONDA_CELLS.items()}, "loads": []}
        with sync_playwright() as playwright:
            for rep in range(runs):
                log(f"[conda] rep {rep + 1}/{runs}")
                for case, cell in CONDA_CELLS.items():
                    pair = run_pair(
                        playwright, CONDA_VARIANT, Path(data["sites"][CONDA_VARIANT]["folder"]),
                        rep, floor=False, warm=False, cell=cell, timeout=args.timeout, log=log,
                    )  # fmt: skip
                    data["conda"]["loads"] += [asdict(load) | {"case": case} for load in pair]
                    save()

    if "browsers" in parts:
        data["browsers"] = {"cells": [FIRST_CELL, LAZY_CELL], "loads": []}
        for rep in range(runs):
            log(f"[browsers] rep {rep + 1}/{runs}")
            for browser in ("chromium", "firefox")[:: 1 if rep % 2 == 0 else -1]:
                for variant in BROWSER_VARIANTS:
                    site = Path(data["sites"][variant]["folder"])
                    load = browser_load(browser, variant, site, rep, args.timeout)
                    log(f"  {browser:9} {variant:10} {load}")
                    data["browsers"]["loads"].append(load)
                    save()

    if "build" in parts:
        from build_bench import pack_scaling, stage_times

        data["build"] = {"stages": stage_times(cache, log=log)}
        save()
        sizes = (20, 60) if args.quick else (20, 60, 120)
        data["build"]["scaling"] = pack_scaling(cache, sizes, log=log)
        save()

    save()
    if any(data[part] for part in ("loads", "profile", "science", "conda", "browsers", "build")):
        write_report(data)
        save()
        log(f"wrote {out}, {RESULTS / 'report.md'}, {RESULTS / 'kernel-start.png'}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("LITE_ENV_CACHE_DIR", "/work/cache")
    sys.exit(main())
