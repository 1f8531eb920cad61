#!/usr/bin/env bash
# Sets up what is missing, then runs the embedded demo. Arguments go to `omni-dpo demo`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec node dist/apps/cli.js demo "$@"
