#!/usr/bin/env bash
# Set up .venv if needed, then run the whole test suite, slow learning tests included.
# Pass pytest arguments through, e.g. `scripts/test.sh -m "not slow"` for the fast tier only.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -n 2 "$@"
