"""Tests of the pure domain (rooms) and of pure services: no server, database or network."""
