#!/bin/sh
# @tool@ of lite-env's emscripten toolchain (runs in its chroot; generated, do not edit).
# emscripten's launchers run $PYTHON: a build's $PYTHON names the target's, not the chroot's.
unset PYTHON
exec @run@ @tool@ "$@"
