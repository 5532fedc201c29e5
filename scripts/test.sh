#!/usr/bin/env bash
# The full test suite: lint, format check, type check + build, then every self-contained test.
# System packages the tests need are installed here when missing (as root, via apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh
npx eslint src
npx prettier --check src
npx tsc -p tsconfig.json
node scripts/run-tests.mjs dist "$@"
