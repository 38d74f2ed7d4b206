"""The pure domain: notes, pieces, clock, scoring, room rules. No file, network or database I/O.
May import mido and the standard library only; never server, aiohttp, socketio, sqlalchemy."""
