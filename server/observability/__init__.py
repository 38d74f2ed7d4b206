"""Structured logs and Prometheus metrics for every layer above the services.
May import rooms, server.db and server.services.
"""
