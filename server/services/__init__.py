"""The application's rules around the domain: accounts, library, logbook, sync, progress,
analytics, privacy, limits. May import rooms and server.db; never aiohttp or Socket.IO.
"""
