#!/usr/bin/env bash
# Refreshes tests/requirements.lock: every runtime and dev dependency of
# pyproject.toml, pinned with hashes, for CPython 3.11+ on any platform.
# Usage: tests/lock.sh [--upgrade | --upgrade-package NAME ...]
# Needs uv (`pip install uv`); the lock it writes is a plain pip requirements file.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v uv >/dev/null 2>&1 || { echo "tests/lock.sh: needs uv (pip install uv)" >&2; exit 1; }
uv pip compile pyproject.toml --extra dev --generate-hashes --universal \
    --python-version 3.11 --no-header --quiet "$@" -o tests/requirements.lock
{ printf '# Pinned runtime + dev dependencies of Tutti, with hashes. Do not edit:\n'
  printf '# refresh with tests/lock.sh (tests/run.sh installs exactly this).\n'
  cat tests/requirements.lock; } > tests/requirements.lock.tmp
mv tests/requirements.lock.tmp tests/requirements.lock
echo "tests/requirements.lock: $(grep -c '^[a-z0-9].*==' tests/requirements.lock) packages pinned"
