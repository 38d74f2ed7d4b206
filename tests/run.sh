#!/usr/bin/env bash
# The whole test suite, as a newcomer runs it (and as CI runs it, via .ci/run):
#   1. builds a virtual environment of its own (.venv-test, or $TUTTI_TEST_VENV)
#      from tests/requirements.lock, exactly, with hashes: packages installed
#      elsewhere on the machine cannot change what the tests run on;
#   2. installs what the tests need beyond pip (redis-server, chromium, postgresql);
#   3. runs ruff check, ruff format --check and pytest.
# Usage: tests/run.sh [pytest args...]     Refresh the lock: tests/lock.sh
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${TUTTI_TEST_VENV:-.venv-test}"
lock=tests/requirements.lock
stamp="$venv/.tutti-lock.sha256"
want="$( (cat "$lock"; python3 --version) | sha256sum | cut -d' ' -f1)"

if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    # A lock that changed gets a new environment, so nothing stale survives.
    echo "tests/run.sh: building $venv from $lock" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check \
        --require-hashes --no-deps -r "$lock"
    echo "$want" > "$stamp"
fi
# The project itself, editable, with nothing resolved beyond the lock.
"$venv/bin/python" -m pip install -q --disable-pip-version-check \
    --no-deps --no-build-isolation -e .
"$venv/bin/python" -m pip check >/dev/null

bash tests/install-test-deps.sh

export PATH="$PWD/$venv/bin:$PATH"
"$venv/bin/python" -m ruff check .
"$venv/bin/python" -m ruff format --check .
exec "$venv/bin/python" -m pytest "$@"
