"""Locust load test for Tutti: musicians playing duets, listeners, devices in sync, REST.

User classes (weights in brackets; pick some by naming them at the end of the
command line, e.g. ``... --host URL ApiUser``):

* ``DuetPlayer`` [6] — pairs up into duet rooms on a library piece and plays
  its part at the piece's note rate; reports note relay latency and the
  scoring round trip (:mod:`tutti_load.duet`);
* ``Spectator`` [2] — joins live rooms as a spectator and listens
  (:mod:`tutti_load.spectator`);
* ``DevicePracticer`` [1] — several devices of one user pushing and pulling
  logbook changes through the sync protocol (:mod:`tutti_load.devices`);
* ``ApiUser`` [1] — REST traffic: pieces, practice logs and sessions, goals,
  logbook reads (:mod:`tutti_load.api`).

Socket.IO users use python-socketio's synchronous client on locust's gevent.
Run headless with ``locust -f loadtests/locustfile.py --headless -u N -r R
-t T --host URL``; options and metric names: ``loadtests/README.md``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This checkout's ``rooms`` and ``tutti_load``, whatever is installed.
_HERE = Path(__file__).resolve().parent
for _path in (str(_HERE.parent), str(_HERE)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from locust import events  # noqa: E402
from tutti_load import board, library, options  # noqa: E402, F401  (options: registers flags)
from tutti_load.api import ApiUser  # noqa: E402
from tutti_load.devices import DevicePracticer  # noqa: E402
from tutti_load.duet import DuetPlayer  # noqa: E402
from tutti_load.spectator import Spectator  # noqa: E402

__all__ = ["ApiUser", "DevicePracticer", "DuetPlayer", "Spectator"]


@events.test_start.add_listener
def _fresh_run(**_kwargs) -> None:
    board.reset()
    library.reset()
