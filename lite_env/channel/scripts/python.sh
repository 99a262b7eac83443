#!/bin/sh
# Python with setuptools, build, Cython and pip, configured to cross-compile for the Pyodide
# runtime (its sysconfigdata): runs in lite-env's emscripten chroot (generated, do not edit).
for variable in $(env | sed -n 's/^\(PIP_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$variable"; done
unset PYTHONHOME PYTHONSTARTUP
export _PYTHON_SYSCONFIGDATA_NAME=@sysconfigdata@
export _PYTHON_HOST_PLATFORM=@host_platform@
export PYTHONPATH=@sysconfig@
export PYTHONNOUSERSITE=1 PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_CONFIG_FILE=/dev/null
exec @run@ @venv@/bin/python "$@"
