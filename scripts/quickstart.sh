#!/usr/bin/env bash
# The quick start: set up, build the default channel from recipes/, then the default site.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/lite-env channel build recipes -o channel
.venv/bin/lite-env build environment.yml -o _output
echo "serve it with: .venv/bin/lite-env serve _output   (then open http://127.0.0.1:8000/lab/index.html)"
