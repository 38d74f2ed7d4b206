#!/usr/bin/env bash
# The whole test suite, as a newcomer runs it: installs the dev extra and what
# the tests need beyond pip (redis-server), then runs pytest.
# Usage: tests/run.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -e '.[dev]'
bash tests/install-test-deps.sh
python3 -m ruff check .
exec python3 -m pytest "$@"
