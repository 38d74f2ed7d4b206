#!/usr/bin/env bash
# Installs what Tutti's tests need beyond pip, when the machine lacks it:
#   redis-server  the tests start their own Redis servers on free ports
#   chromium      the browser client's headless smoke test
#   postgresql    the persistence tests also run on a private PostgreSQL cluster
#   fluidsynth, fluid-soundfont-gm  render real pieces to audio for the audio-job tests
# Safe to run again; does nothing when everything is there.
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ -x /usr/bin/chromium ] || [ -x /usr/bin/chromium-browser ] || missing+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 \
    || missing+=(postgresql)
command -v fluidsynth >/dev/null 2>&1 || missing+=(fluidsynth)
[ -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || missing+=(fluid-soundfont-gm)

if [ ${#missing[@]} -gt 0 ]; then
    echo "tests/install-test-deps.sh: installing ${missing[*]}" >&2
    if command -v apt-get >/dev/null 2>&1; then
        SUDO=""
        [ "$(id -u)" = 0 ] || SUDO="sudo"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "Please install: ${missing[*]} (with your system's package manager) and run again." >&2
        exit 1
    fi
fi
echo "test dependencies: $(redis-server --version | cut -d' ' -f1-3)," \
    "$(/usr/bin/chromium --version 2>/dev/null || echo chromium)," \
    "PostgreSQL $(ls /usr/lib/postgresql 2>/dev/null | tail -1)"
