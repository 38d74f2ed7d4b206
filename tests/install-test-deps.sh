#!/usr/bin/env bash
# Installs what Tutti's tests need beyond pip, when the machine lacks it:
# a redis-server binary (the tests start their own servers on free ports).
# Safe to run again; does nothing when everything is there.
set -euo pipefail

need_redis=1
command -v redis-server >/dev/null 2>&1 && need_redis=0

if [ "$need_redis" = 1 ]; then
    echo "tests/install-test-deps.sh: installing redis-server" >&2
    if command -v apt-get >/dev/null 2>&1; then
        SUDO=""
        [ "$(id -u)" = 0 ] || SUDO="sudo"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
    elif command -v brew >/dev/null 2>&1; then
        brew install redis
    elif command -v dnf >/dev/null 2>&1; then
        sudo dnf install -y redis
    else
        echo "Please install redis-server (https://redis.io/docs/install/) and run again." >&2
        exit 1
    fi
fi
redis-server --version
