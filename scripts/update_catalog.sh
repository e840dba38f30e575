#!/usr/bin/env bash
# Regenerate rlsuite/core/catalog.py from the SPEC of every algorithm file (run after adding one).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -c "from rlsuite.core.registry import write_catalog; print('wrote', write_catalog())"
