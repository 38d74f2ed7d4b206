"""REST routes for issue 3 (stub, to be filled in)."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
