"""Building blocks of Tutti's locust scenarios (``loadtests/locustfile.py``).

One module per job: ``options`` (command-line arguments), ``socket_user`` (guest
login, Socket.IO connection, clock sync and metrics helpers shared by the
Socket.IO users), ``library`` (the piece the rooms play), ``board`` (pairing
users into rooms, the live rooms spectators pick from), and one module per
user class: ``duet``, ``spectator``, ``devices``, ``api``.
"""
