"""Run Python code in Pyodide under node: for tests and for build steps done by the target."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from lite_env.errors import LiteEnvError

#: The node ES module that boots Pyodide and runs the code read from its stdin.
RUNNER = Path(__file__).with_name("pyodide_node.mjs")
#: The Python programs that run inside Pyodide.
PROGRAMS = Path(__file__).with_name("in_pyodide")
#: Where the `python` package puts Pyodide's core files, relative to the prefix.
RUNTIME_DIR = "share/pyodide"


def run_python(
    prefix: Path,
    code: str,
    *,
    mounts: Mapping[Path, str] | None = None,
    snapshot: Path | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run `code` as __main__ in the prefix's Pyodide under node and return the finished process.

    Args:
        prefix: an installed environment: Pyodide in `share/pyodide/`, packages in
            `lib/python3.X/site-packages/` (copied into Pyodide's site-packages first).
        code: Python source, passed on stdin.
        mounts: host folders to mount at paths of Pyodide's file system (writes land on the
            host).
        snapshot: run the code in an interpreter made for snapshots, then write its memory
            snapshot to this file. Its output then goes to the console unchanged.
        timeout: seconds before the run is abandoned.

    The return code is 0, the status of a SystemExit, or 1 after an uncaught exception (its
    traceback is on stderr); 2 means Pyodide did not start. Raises LiteEnvError when node is
    missing, the prefix holds no Pyodide runtime, or the run times out.
    """
    runtime = prefix / RUNTIME_DIR
    if not (runtime / "pyodide.mjs").is_file():
        raise LiteEnvError(
            f"{prefix} holds no Pyodide runtime ({RUNTIME_DIR}/pyodide.mjs is missing)",
            hint="install the `python` package of an emscripten-wasm32 channel into it",
        )
    site_packages = sorted(prefix.glob("lib/python3.*/site-packages"))
    arguments = [str(runtime), *map(str, site_packages[-1:])]
    for host, guest in (mounts or {}).items():
        arguments += ["--mount", f"{host.absolute()}:{guest}"]
    if snapshot is not None:
        arguments += ["--snapshot", str(snapshot.absolute())]
    return _run_node(arguments, code, timeout)


def program(name: str, **arguments: object) -> str:
    """The code that runs lite_env/in_pyodide/<name>.py's `main` with these arguments (plain
    values: strings, numbers, lists, None), for run_python."""
    source = (PROGRAMS / f"{name}.py").read_text()
    return f"{source}\nmain(**{arguments!r})\n"


def run_python_with_loader(
    runtime_dir: Path, code: str, options: Mapping[str, object], *, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `code` in Pyodide booted through lite-env's loader (`lite-env.mjs` in runtime_dir).

    `options` are the loader's loadPyodide options, as the kernel would pass them
    (liteEnvManifestURL must be an http URL: node cannot fetch files). Returns as run_python.
    """
    return _run_node([str(runtime_dir), "--loader", json.dumps(dict(options))], code, timeout)


def _run_node(arguments: list[str], code: str, timeout: float) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    if node is None:
        raise LiteEnvError(
            "cannot run Pyodide: node is not installed",
            hint="install Node.js 18 or newer (e.g. `apt-get install nodejs`)",
        )
    command = [node, str(RUNNER), *arguments]
    try:
        return subprocess.run(command, input=code, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as error:
        stderr = error.stderr or b""
        if isinstance(stderr, bytes):
            stderr = stderr.decode(errors="replace")
        raise LiteEnvError(
            f"Python in Pyodide did not finish within {timeout:g} s", hint=stderr[-2000:] or None
        ) from None
