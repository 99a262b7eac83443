"""meson-python cross builds for the Pyodide runtime: a build venv with meson and a cross file.

Set up once beside the emscripten toolchain (lite_env.channel.toolchain), under
`toolchain/meson/`:

    cross.ini        the meson cross file: host machine emscripten/wasm32, the toolchain's
                     compilers, node as exe_wrapper, the runtime's long double format, the
                     side-module ABI flags
    side-module.sh   runs emcc/em++, adding -sSIDE_MODULE=1 -O2 to a `-shared` link only: a
                     configure probe links an executable, which fails on a symbol the runtime
                     lacks (numpy's `backtrace`) instead of passing as an import of a side module
    python           the meson venv's Python with the runtime's sysconfigdata (meson-python,
                     meson, ninja, Cython)
    meson.json       what was set up

A recipe builds with `$LITE_ENV_MESON_PYTHON -m pip install . --no-build-isolation --no-deps
--target ... -Csetup-args=--cross-file=$LITE_ENV_MESON_CROSS`.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lite_env.channel.toolchain import (
    CFLAGS,
    LDFLAGS,
    SCRIPTS,
    SYSCONFIGDATA,
    Toolchain,
    ensure_venv,
    shell_quote,
    shell_script,
)

#: The meson build venv (Python 3.13 in the chroot): the PEP 517 backend and its tools.
MESON_REQUIREMENTS = ("meson-python==0.22.1", "meson==1.12.1", "ninja==1.13.2", "cython==3.3.1")
MESON_VENV = "/opt/lite-env/meson-venv"
#: Link flags side-module.sh adds to `-shared` links only: a side module, optimized by
#: binaryen (which would only slow down meson's hundreds of probe links).
SIDE_MODULE_FLAGS = ("-sSIDE_MODULE=1", "-O2")
#: The meson Python's PYTHONPATH ends with $LITE_ENV_MESON_PYTHONPATH: what a build imports
#: at configure time, such as a stand-in for numpy (`numpy.get_include()` of the host prefix:
#: that numpy is WebAssembly) before the host prefix's site-packages (Cython's .pxd files).
EXTRA_PYTHONPATH = (
    'export PYTHONPATH="$PYTHONPATH${LITE_ENV_MESON_PYTHONPATH:+:$LITE_ENV_MESON_PYTHONPATH}"\n'
)
#: The runtime's `long double` (wasm32: IEEE binary128, little endian); meson cannot probe it
#: by running a cross-compiled program for numpy.
LONGDOUBLE_FORMAT = "IEEE_QUAD_LE"


@dataclass(frozen=True)
class MesonTools:
    """The meson cross setup for the toolchain: its cross file and the venv's Python."""

    folder: Path
    cross_file: Path
    python: Path

    def env(self) -> dict[str, str]:
        """LITE_ENV_MESON_PYTHON (pip, meson-python, meson, ninja, Cython; cross-configured for
        the runtime), LITE_ENV_MESON_CROSS (the cross file, for `-Csetup-args=--cross-file=`)
        NINJA (the venv's, which meson-python runs: the chroot's PATH does not hold it) and
        LITE_ENV_MESON (the venv's meson: `export MESON=$LITE_ENV_MESON` for a project that
        does not bring its own, as numpy does)."""
        return {
            "LITE_ENV_MESON_PYTHON": str(self.python),
            "LITE_ENV_MESON_CROSS": str(self.cross_file),
            "LITE_ENV_MESON": f"{MESON_VENV}/bin/meson",
            "NINJA": f"{MESON_VENV}/bin/ninja",
        }


def ensure_meson(
    toolchain: Toolchain, *, report: Callable[[str], None] = lambda message: None
) -> MesonTools:
    """Return the meson setup of `toolchain`, making its venv (once) and writing its files."""
    folder = toolchain.folder / "meson"
    folder.mkdir(exist_ok=True)
    chroot = json.loads((toolchain.folder / "chroot.json").read_text())
    machine = platform.machine()
    ensure_venv(
        toolchain.folder,
        MESON_VENV,
        MESON_REQUIREMENTS,
        chroot=chroot,
        wheels=folder / "wheels",
        stamp_path=folder / "meson.json",
        pip_options=(
            "--implementation", "cp", "--platform", "any",
            "--platform", f"manylinux_2_17_{machine}", "--platform", f"manylinux2014_{machine}",
            "--platform", f"manylinux_2_28_{machine}",
        ),
        report=report,
    )  # fmt: skip
    tools = MesonTools(folder, folder / "cross.ini", folder / "python")
    wrapper = folder / "side-module.sh"
    files = {
        wrapper: (SCRIPTS / "side-module.sh").read_text(),
        tools.python: shell_script(
            "python.sh",
            sysconfigdata=SYSCONFIGDATA,
            host_platform=f"{toolchain.platform}_wasm32",
            sysconfig=shell_quote(str(toolchain.sysconfig)),
            run=shell_quote(str(toolchain.bin / "chroot-run")),
            venv=MESON_VENV,
        ).replace("exec ", EXTRA_PYTHONPATH + "exec ", 1),
        tools.cross_file: cross_file(toolchain, wrapper, tools.python),
    }
    for path, text in files.items():
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
    for path in (wrapper, tools.python):
        path.chmod(0o755)
    return tools


def cross_file(toolchain: Toolchain, wrapper: Path, python: Path) -> str:
    """The meson cross file for Pyodide side modules built with `toolchain`."""
    compile_args = CFLAGS.split()
    link_args = [flag for flag in LDFLAGS.split() if flag not in SIDE_MODULE_FLAGS]
    lines = [
        "# meson cross file for the Pyodide runtime (emscripten-wasm32), written by lite-env",
        "[host_machine]",
        "system = 'emscripten'",
        "cpu_family = 'wasm32'",
        "cpu = 'wasm32'",
        "endian = 'little'",
        "",
        "[binaries]",
        f"c = {_array([str(wrapper), str(toolchain.bin / 'emcc')])}",
        f"cpp = {_array([str(wrapper), str(toolchain.bin / 'em++')])}",
        f"ar = {_string(str(toolchain.bin / 'emar'))}",
        f"ranlib = {_string(str(toolchain.bin / 'emranlib'))}",
        f"python = {_string(str(python))}",
        f"cython = {_string(f'{MESON_VENV}/bin/cython')}",
        "exe_wrapper = 'node'",
        "pkg-config = 'false'",
        "",
        "[properties]",
        "needs_exe_wrapper = true",
        f"longdouble_format = {_string(LONGDOUBLE_FORMAT)}",
        "",
        "[built-in options]",
        f"c_args = {_array(compile_args)}",
        f"cpp_args = {_array(compile_args)}",
        f"c_link_args = {_array(link_args)}",
        f"cpp_link_args = {_array(link_args)}",
    ]
    return "\n".join(lines) + "\n"


def _string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _array(items: list[str]) -> str:
    return "[" + ", ".join(_string(item) for item in items) + "]"
