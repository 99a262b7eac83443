#!/bin/sh
# A compiler for meson cross builds: `side-module.sh emcc ARGS...` runs emcc with ARGS and,
# when they link a shared library (-shared), makes it a Pyodide side module (-sSIDE_MODULE=1),
# optimized by binaryen (-O2).
# Other links (configure probes) make executables, whose undefined symbols fail the link.
# Part of lite-env (lite_env/channel/meson.py copies it beside the cross file).
for argument in "$@"; do
  if [ "$argument" = -shared ]; then
    exec "$@" -sSIDE_MODULE=1 -O2
  fi
done
exec "$@"
