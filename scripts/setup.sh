#!/usr/bin/env bash
# Set up a development environment: a virtualenv with lite-env and its test tools, and the
# system tools the tests use (node and npm run Pyodide headless; chromium for browser tests).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
