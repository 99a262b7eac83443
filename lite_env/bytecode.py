"""Compile `.pyc` files with the target interpreter (Pyodide under node) for the image.

Host Python's bytecode is for another version, and the browser spends most of a kernel start
compiling and importing: precompiled bytecode is where the time is won. Files written into
Pyodide's in-memory file system get a fresh mtime, so the bytecode is checked by source hash
never (UNCHECKED_HASH): an image's sources cannot change under it.

The standard library counts most: Pyodide's `python_stdlib.zip` holds sources only, and
compiling the modules that Python's own start and the kernel import is about 2 s of a cold
start in the browser. The same run writes a copy of that zip with an unchecked `.pyc` beside
each chosen module (zipimport prefers it; the sources stay, for tracebacks), which the site
ships in place of the original. Top-level modules and packages that the start does not import
may be left out of it, for the image to write on their first import (`lazy_stdlib`).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lite_env.errors import LiteEnvError
from lite_env.files import copy_folder_out
from lite_env.kernel import KERNEL_IMPORTS
from lite_env.options import Bytecode
from lite_env.pyodide_node import program, run_python

OVERLAY = "/lite-env-overlay"
#: Where the run writes the compiled standard library zip.
STDLIB_OUT = "/lite-env-stdlib"
#: The runtime's standard library zip, as the `python` package ships it.
STDLIB_ZIP = "python_stdlib.zip"
#: What the compile run's last line of output holds.
RESULT_KEYS = frozenset({"compiled", "stdlib", "failed", "imported"})


@dataclass(frozen=True)
class CompiledBytecode:
    """What compile_bytecode did: site-packages files and standard library modules compiled,
    problems met, modules the preload imported."""

    compiled: int
    problems: tuple[str, ...]
    imported: tuple[str, ...]
    stdlib: int = 0


def compile_bytecode(
    prefix: Path,
    overlay: Path,
    *,
    mode: Bytecode = "imported",
    preload: Sequence[str] = KERNEL_IMPORTS,
    stdlib: Path | None = None,
    lazy_stdlib: Path | None = None,
) -> CompiledBytecode:
    """Write `.pyc` files for the prefix's site-packages under `overlay` (prefix-relative paths).

    Args:
        prefix: the installed environment (with its Pyodide runtime).
        overlay: an empty folder; receives `lib/python3.X/site-packages/**/__pycache__/*.pyc`.
        mode: which modules to compile (see Bytecode).
        preload: the modules imported to trace what "imported" compiles.
        stdlib: a folder that receives `python_stdlib.zip` with the standard library's
            bytecode for the same modules (None: the standard library is left alone).
        lazy_stdlib: with `stdlib` in mode "imported", a folder (created) that receives the
            top-level modules and packages the start did not import, left out of the zip,
            as prefix-relative paths under lib-dynload (on sys.path after the zip).

    Returns the number of files compiled, the problems met (modules that failed to import,
    sources that do not compile: reported, not fatal) and the modules the preload imported
    (traced in every mode).
    """
    if mode == "none":
        return CompiledBytecode(0, (), ())
    overlay.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".stdlib-", dir=overlay.parent) as scratch:
        code = program(
            "compile_bytecode",
            mode=mode,
            preload=list(preload),
            overlay=OVERLAY,
            stdlib_out=STDLIB_OUT if stdlib is not None else None,
            stdlib_zip=STDLIB_ZIP,
            stdlib_lazy=lazy_stdlib is not None,
        )
        mounts = {overlay: OVERLAY, Path(scratch): STDLIB_OUT}
        done = run_python(prefix, code, mounts=mounts, timeout=600)
        if done.returncode != 0:
            raise LiteEnvError("cannot compile bytecode in Pyodide", hint=done.stderr[-3000:])
        if stdlib is not None:
            stdlib.mkdir(parents=True, exist_ok=True)
            os.replace(Path(scratch) / STDLIB_ZIP, stdlib / STDLIB_ZIP)
            if lazy_stdlib is not None and (Path(scratch) / "lazy").exists():
                copy_folder_out(Path(scratch) / "lazy", lazy_stdlib)  # never a link of the run's
    result = run_result(done.stdout, done.stderr)
    return CompiledBytecode(
        result["compiled"], tuple(result["failed"]), tuple(result["imported"]), result["stdlib"]
    )


def run_result(stdout: str, stderr: str) -> dict:
    """The JSON summary the compile run prints last; LiteEnvError when it printed none."""
    lines = stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1]) if lines else None
    except ValueError:
        result = None
    if not isinstance(result, dict) or not RESULT_KEYS <= result.keys():
        raise LiteEnvError(
            "the bytecode run in Pyodide printed no result",
            hint=(stderr or stdout)[-3000:] or "it printed nothing",
        )
    return result
