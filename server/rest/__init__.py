"""The REST API: one module per URL prefix, the OpenAPI document, HTTP middlewares and probes.
May import rooms, server.db, server.services, server.observability,
and server.realtime for room state.
"""
