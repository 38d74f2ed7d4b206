"""Socket.IO: events, guards, connections, rooms in memory, fan-out, recovery streams,
presence and Redis replication. May import rooms, server.db, server.services, server.observability.
"""
