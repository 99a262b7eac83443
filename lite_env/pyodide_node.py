"""Run Python code in an installed prefix's Pyodide under node (tests, target-side build steps)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from lite_env.errors import LiteEnvError

#: The node ES module that boots Pyodide and runs the code read from its stdin.
RUNNER = Path(__file__).with_name("pyodide_node.mjs")
#: Where the `python` package puts Pyodide's core files, relative to the prefix.
RUNTIME_DIR = "share/pyodide"


def run_python(
    prefix: Path, code: str, *, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `code` as __main__ in the prefix's Pyodide under node and return the finished process.

    Args:
        prefix: an installed environment: Pyodide in `share/pyodide/`, packages in
            `lib/python3.X/site-packages/` (copied into Pyodide's site-packages first).
        code: Python source, passed on stdin.
        timeout: seconds before the run is abandoned.

    The return code is 0, the status of a SystemExit, or 1 after an uncaught exception (its
    traceback is on stderr); 2 means Pyodide did not start. Raises LiteEnvError when node is
    missing, the prefix holds no Pyodide runtime, or the run times out.
    """
    node = shutil.which("node")
    if node is None:
        raise LiteEnvError(
            "cannot run Pyodide: node is not installed",
            hint="install Node.js 18 or newer (e.g. `apt-get install nodejs`)",
        )
    runtime = prefix / RUNTIME_DIR
    if not (runtime / "pyodide.mjs").is_file():
        raise LiteEnvError(
            f"{prefix} holds no Pyodide runtime ({RUNTIME_DIR}/pyodide.mjs is missing)",
            hint="install the `python` package of an emscripten-wasm32 channel into it",
        )
    site_packages = sorted(prefix.glob("lib/python3.*/site-packages"))
    command = [node, str(RUNNER), str(runtime), *map(str, site_packages[-1:])]
    try:
        return subprocess.run(command, input=code, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as error:
        stderr = error.stderr or b""
        if isinstance(stderr, bytes):
            stderr = stderr.decode(errors="replace")
        raise LiteEnvError(
            f"Python in Pyodide did not finish within {timeout:g} s", hint=stderr[-2000:] or None
        ) from None
