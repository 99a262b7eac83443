"""The target platform: the conda subdirs lite-env solves, builds and installs for."""

from __future__ import annotations

PLATFORM = "emscripten-wasm32"
SUBDIRS = (PLATFORM, "noarch")
#: Emscripten is a unix; the browser has no libc or CPU features to describe.
VIRTUAL_PACKAGES = (("__unix", "0", "0"),)
