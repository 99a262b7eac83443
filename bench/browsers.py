"""Firefox beside Chromium: the same sites started and used through lite-env's own checks
(`lite-env check` and `lite-env check --browser firefox`), so both browsers are driven alike:
a fresh profile, the site served by lite-env's server, the kernel's start, then cells."""

from __future__ import annotations

import time
from pathlib import Path

from lite_env.errors import LiteEnvError
from lite_env.firefox_check import run_in_firefox
from lite_env.site_check import open_notebook, run_cell

#: The cells run after idle: a trivial one, then (lite-env sites) the first import of two
#: lazy packages.
FIRST_CELL = "print(6*7)"
LAZY_CELL = "import sympy, networkx\nprint('lazy', sympy.__version__)"


def browser_load(browser: str, variant: str, site: Path, rep: int, timeout: float) -> dict:
    """One cold load of `site` in `browser`: seconds to idle and per cell, or the error."""
    cells = [FIRST_CELL] + ([LAZY_CELL] if variant.startswith("lite-env") else [])
    load = {"browser": browser, "variant": variant, "rep": rep, "ok": False}
    try:
        if browser == "firefox":
            run = run_in_firefox(site, cells, timeout=timeout)
            idle, seconds = run.time_to_idle_s, list(run.cell_seconds)
        else:
            with open_notebook(site, timeout=timeout) as notebook:
                idle, seconds = notebook.time_to_idle_s, []
                for code in cells:
                    started = time.perf_counter()
                    run_cell(notebook.page, code, timeout=timeout)
                    seconds.append(time.perf_counter() - started)
    except LiteEnvError as error:
        load["error"] = error.message[:300]
        return load
    return load | {"ok": True, "idle_s": idle, "cell_s": seconds}
