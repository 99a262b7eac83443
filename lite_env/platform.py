"""The target platform: the conda subdirs lite-env solves, builds and installs for."""

from __future__ import annotations

PLATFORM = "emscripten-wasm32"
SUBDIRS = (PLATFORM, "noarch")
#: The runtime's Python and binary ABI: Pyodide 314.0.7 is CPython 3.14 and its
#: pyodide-lock.json says `abi_version: 2026_0`. Compiled packages, and wheels from PyPI
#: (PEP 783), load only when built for exactly these.
PYTHON_VERSION = (3, 14)
PYODIDE_ABI = "2026_0"
#: The platform tag of PEP 783 wheels built for the runtime's ABI.
WHEEL_PLATFORM = f"pyemscripten_{PYODIDE_ABI}_wasm32"
#: Emscripten is a unix; the browser has no libc or CPU features to describe.
VIRTUAL_PACKAGES = (("__unix", "0", "0"),)
#: The marker environment of Pyodide 314 (Python 3.14.2, Emscripten 5.0.3, wasm32).
PYODIDE_MARKERS = {
    "implementation_name": "cpython",
    "implementation_version": "3.14.2",
    "os_name": "posix",
    "platform_machine": "wasm32",
    "platform_python_implementation": "CPython",
    "platform_release": "5.0.3",
    "platform_system": "Emscripten",
    "platform_version": "#1",
    "python_full_version": "3.14.2",
    "python_version": "3.14",
    "sys_platform": "emscripten",
}
