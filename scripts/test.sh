#!/usr/bin/env bash
# Sets up what is missing, then runs the whole test suite. Arguments go to `node --test`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec node scripts/run-tests.mjs "$@"
