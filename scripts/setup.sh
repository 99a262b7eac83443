#!/usr/bin/env bash
# Set up a development environment: a virtualenv with lite-env and its test tools, and the
# system tools the tests use (node and npm run Pyodide headless; chromium and firefox-esr for
# browser tests; puppeteer-core, from npm into .venv/node, drives Firefox: it downloads no browser).
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/firefox-esr ] || missing+=(firefox-esr)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
# 24.43.1: puppeteer-core's last release for node 20 (25 needs node 22); it drives Firefox ESR
# 153 over WebDriver BiDi
PUPPETEER=24.43.1
installed=$(node -p "require('./.venv/node/node_modules/puppeteer-core/package.json').version" 2>/dev/null || true)
if [ "$installed" != "$PUPPETEER" ]; then
  npm install --prefix .venv/node --save-exact --no-audit --no-fund --silent "puppeteer-core@$PUPPETEER"
fi
