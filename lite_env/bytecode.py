"""Compile `.pyc` files with the target interpreter (Pyodide under node) for the image.

Host Python's bytecode is for another version, and the browser spends most of a kernel start
compiling and importing: precompiled bytecode is where the time is won. Files written into
Pyodide's in-memory file system get a fresh mtime, so the bytecode is checked by source hash
never (UNCHECKED_HASH): an image's sources cannot change under it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lite_env.errors import LiteEnvError
from lite_env.pyodide_node import run_python

#: "imported": only modules imported while the kernel starts (traced); "all": every module.
Bytecode = Literal["none", "imported", "all"]
#: What JupyterLite's Pyodide kernel imports as it starts.
KERNEL_IMPORTS = ("piplite.piplite", "pyodide_kernel", "ipykernel", "comm", "IPython", "jedi")
OVERLAY = "/lite-env-overlay"

_COMPILE = """
import importlib, importlib.util, json, os, py_compile, site, sys

mode, preload, overlay = {mode!r}, {preload!r}, {overlay!r}
site_packages = site.getsitepackages()[0]
started = set(sys.modules)
failed = []
for module in preload:
    try:
        importlib.import_module(module)
    except Exception as error:
        failed.append(f"{{module}}: {{type(error).__name__}}: {{error}}")
if mode == "all":
    sources = [
        os.path.join(folder, name)
        for folder, _, names in os.walk(site_packages)
        for name in names
        if name.endswith(".py")
    ]
else:
    sources = [
        m.__file__ for m in list(sys.modules.values())
        if (getattr(m, "__file__", None) or "").startswith(site_packages + "/")
        and m.__file__.endswith(".py")
    ]
count = 0
for source in sorted(set(sources)):
    target = overlay + importlib.util.cache_from_source(source)
    try:
        py_compile.compile(
            source, cfile=target, dfile=source, doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
        count += 1
    except py_compile.PyCompileError as error:
        failed.append(f"{{source}}: {{error.msg}}")
imported = sorted(set(sys.modules) - started)
result = {{"compiled": count, "failed": failed, "imported": imported}}
sys.__stdout__.write(json.dumps(result) + "\\n")
"""


@dataclass(frozen=True)
class CompiledBytecode:
    """What compile_bytecode did: files compiled, problems met, modules the preload imported."""

    compiled: int
    problems: tuple[str, ...]
    imported: tuple[str, ...]


def compile_bytecode(
    prefix: Path,
    overlay: Path,
    *,
    mode: Bytecode = "imported",
    preload: Sequence[str] = KERNEL_IMPORTS,
) -> CompiledBytecode:
    """Write `.pyc` files for the prefix's site-packages under `overlay` (prefix-relative paths).

    Args:
        prefix: the installed environment (with its Pyodide runtime).
        overlay: an empty folder; receives `lib/python3.X/site-packages/**/__pycache__/*.pyc`.
        mode: which modules to compile (see Bytecode).
        preload: the modules imported to trace what "imported" compiles.

    Returns the number of files compiled, the problems met (modules that failed to import,
    sources that do not compile: reported, not fatal) and the modules the preload imported
    (traced in every mode).
    """
    if mode == "none":
        return CompiledBytecode(0, (), ())
    overlay.mkdir(parents=True, exist_ok=True)
    code = _COMPILE.format(mode=mode, preload=list(preload), overlay=OVERLAY)
    done = run_python(prefix, code, mounts={overlay: OVERLAY}, timeout=600)
    if done.returncode != 0:
        raise LiteEnvError("cannot compile bytecode in Pyodide", hint=done.stderr[-3000:])
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return CompiledBytecode(result["compiled"], tuple(result["failed"]), tuple(result["imported"]))
