"""Prometheus metrics of one Tutti process, served at ``GET /metrics``.

Every application gets its own :class:`prometheus_client.CollectorRegistry`
(never the global one), so several apps in one process do not clash. The
text is prometheus-client's exposition format 0.0.4
(``generate_latest``).

=====================================  =========  ==========================================
metric                                 type       meaning (unit)
=====================================  =========  ==========================================
``tutti_connections``                  gauge      Socket.IO connections of this process
``tutti_rooms{phase}``                 gauge      rooms held by this process, by phase
                                                  (``waiting``, ``counting_in``, ``playing``,
                                                  ``finished``), counted at scrape time
``tutti_notes_relayed_total``          counter    note events accepted and relayed
``tutti_relay_latency_seconds``        histogram  a ``note``/``notes`` message taken by the
                                                  room manager → relayed (emitted), s
``tutti_scoring_seconds``              histogram  scoring (and recording) time per note, s
``tutti_db_query_seconds{operation}``  histogram  one SQL statement, by verb (``select``,
                                                  ``insert``, ``update``, ``delete``,
                                                  ``other``), s
``tutti_redis_pubsub_lag_seconds``     histogram  a fan-out message's publish time (stamped
                                                  in the message) → received by this
                                                  process, s (wall clocks: processes on
                                                  different hosts need synchronised clocks)
``tutti_rate_limit_rejections_total``  counter    requests/events refused by a rate limit,
``{scope,kind}``                                  by scope (``user``, ``ip``,
                                                  ``connection``, …) and kind (``rest``,
                                                  ``event``, ``notes``, …)
``process_*``                                     prometheus-client's process collector
=====================================  =========  ==========================================

**Per-note cost.** The note path (:meth:`Metrics.note_relayed`) updates a
plain int and two :class:`FastHistogram` s: lock-free bucket counters
(everything runs on the event loop's one thread) turned into Prometheus
histograms only when scraped. ``python -m loadtests.bench.metrics`` on the
development machine: 0.50 µs per one-note message, clock readings included,
8 % of the scorer's 6.3 µs per note measured in the same run;
prometheus-client's ``Counter`` + two ``Histogram`` s (a lock each) would
cost 2.0 µs (31 %). prometheus-client's own metrics serve where calls are
rarer (database, pub/sub, rate limits).

Other modules report through :func:`record_rejection` (rate limits) and the
hooks the application factory wires (:func:`install`).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from sqlalchemy import event

from server.appkeys import METRICS as METRICS_KEY
from server.services import limits_counter

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from server.realtime.room_service import RoomService as RoomManager

# generate_latest writes the classic text format, 0.0.4 (newer clients name 1.0.0 "latest").
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PHASES = ("waiting", "counting_in", "playing", "finished")
SQL_VERBS = frozenset({"select", "insert", "update", "delete"})

# Note relay and scoring are sub-millisecond on a healthy process; the tail matters.
FAST_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
)  # fmt: skip
DB_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LAG_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)


class FastHistogram:
    """A histogram for the hot path: bucket counts in a list, no lock, no labels.

    ``bounds``: upper bounds in seconds, increasing (``+Inf`` is added).
    Only for code on one thread (the event loop). :meth:`family` gives the
    Prometheus histogram (cumulative buckets) at scrape time.
    """

    __slots__ = ("name", "documentation", "bounds", "counts", "total")

    def __init__(self, name: str, documentation: str, bounds: Iterable[float]) -> None:
        self.name = name
        self.documentation = documentation
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0

    def observe(self, value: float, count: int = 1) -> None:
        """Add ``count`` observations of ``value`` (seconds)."""
        self.counts[bisect_left(self.bounds, value)] += count
        self.total += value * count

    def family(self) -> HistogramMetricFamily:
        cumulative, running = [], 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            cumulative.append((_bound(bound), running))
        return HistogramMetricFamily(
            self.name, self.documentation, buckets=cumulative, sum_value=self.total
        )


def _bound(value: float) -> str:
    return "+Inf" if value == float("inf") else repr(float(value))


class Metrics:
    """The metrics of one application; see the module docstring for names and units.

    ``manager``: the room manager whose connections and rooms are counted at
    scrape time (may be set later through :attr:`manager`).
    """

    def __init__(self, manager: RoomManager | None = None, *, process: bool = True) -> None:
        self.manager = manager
        self.registry = CollectorRegistry()
        self.registry.tutti_metrics = self  # record_rejection(registry, …) finds us
        self.notes_relayed = 0
        self.relay_latency = FastHistogram(
            "tutti_relay_latency_seconds",
            "Note message taken by the room manager until relayed (emitted), seconds.",
            FAST_BUCKETS,
        )
        self.scoring = FastHistogram(
            "tutti_scoring_seconds", "Scoring and recording time per note, seconds.", FAST_BUCKETS
        )
        self.db_latency = Histogram(
            "tutti_db_query_seconds",
            "Duration of one SQL statement, by operation (SQL verb), seconds.",
            ["operation"],
            buckets=DB_BUCKETS,
            registry=self.registry,
        )
        self.pubsub_lag = Histogram(
            "tutti_redis_pubsub_lag_seconds",
            "Redis pub/sub fan-out: publish time stamped in the message until received, seconds.",
            buckets=LAG_BUCKETS,
            registry=self.registry,
        )
        self.rate_limit_rejections = Counter(
            "tutti_rate_limit_rejections",
            "Requests and events refused by a rate limit, by scope and kind.",
            ["scope", "kind"],
            registry=self.registry,
        )
        self.registry.register(_Collector(self))
        if process:
            ProcessCollector(registry=self.registry)

    # -- hooks --------------------------------------------------------------------------

    def note_relayed(
        self, notes: int, received: float, scoring: float, scored: float, emitted: float
    ) -> None:
        """A ``note``/``notes`` message of ``notes`` events was relayed.

        ``time.perf_counter()`` readings, s: ``received`` the manager took the
        message, ``scoring``/``scored`` around scoring and recording,
        ``emitted`` after the emit returned.
        """
        # FastHistogram.observe, inlined: this runs for every relayed message.
        self.notes_relayed += notes
        relay = self.relay_latency
        value = emitted - received
        relay.counts[bisect_left(relay.bounds, value)] += 1
        relay.total += value
        score = self.scoring
        value = scored - scoring
        score.counts[bisect_left(score.bounds, value / notes)] += notes
        score.total += value

    def pubsub_received(self, published_at: float) -> None:
        """A fan-out message stamped ``published_at`` (Unix time, s) arrived now."""
        self.pubsub_lag.observe(max(0.0, time.time() - published_at))

    def rejection(self, scope: str, kind: str) -> None:
        self.rate_limit_rejections.labels(scope=scope, kind=kind).inc()

    def instrument_engine(self, engine: AsyncEngine) -> None:
        """Time every SQL statement of ``engine`` (SQLAlchemy cursor events)."""
        observe = self.db_latency

        @event.listens_for(engine.sync_engine, "before_cursor_execute")
        def _before(conn, cursor, statement, parameters, context, executemany) -> None:
            conn.info.setdefault("tutti_query_start", []).append(time.perf_counter())

        @event.listens_for(engine.sync_engine, "after_cursor_execute")
        def _after(conn, cursor, statement, parameters, context, executemany) -> None:
            starts = conn.info.get("tutti_query_start")
            if not starts:
                return
            elapsed = time.perf_counter() - starts.pop()
            observe.labels(operation=sql_operation(statement)).observe(elapsed)

        @event.listens_for(engine.sync_engine, "handle_error")
        def _error(context) -> None:  # a failed statement leaves no stale start behind
            conn = context.connection
            if conn is not None and conn.info.get("tutti_query_start"):
                conn.info["tutti_query_start"].pop()

    # -- exposition ---------------------------------------------------------------------

    def exposition(self) -> bytes:
        """The Prometheus text exposition of every metric (format 0.0.4)."""
        return generate_latest(self.registry)


def sql_operation(statement: str) -> str:
    """The SQL verb of ``statement`` in lower case, or ``other`` (``PRAGMA``, ``WITH``, …)."""
    verb = statement.lstrip()[:6].lower()
    return verb if verb in SQL_VERBS else "other"


class _Collector:
    """What is read at scrape time: connections, rooms by phase, the hot-path metrics."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def describe(self) -> list:
        return []  # collected lazily: nothing to check at registration

    def collect(self):
        m = self.metrics
        manager = m.manager
        connections = GaugeMetricFamily(
            "tutti_connections", "Socket.IO connections of this process."
        )
        rooms = GaugeMetricFamily(
            "tutti_rooms", "Rooms held by this process, by phase.", labels=["phase"]
        )
        counts = dict.fromkeys(PHASES, 0)
        if manager is not None:
            connections.add_metric([], len(manager.connections))
            now = time.time() * 1000.0
            for room in list(manager.rooms.values()):
                phase = room.phase(now)
                counts[phase] = counts.get(phase, 0) + 1
        else:
            connections.add_metric([], 0)
        for phase, count in counts.items():
            rooms.add_metric([phase], count)
        yield connections
        yield rooms
        notes = CounterMetricFamily("tutti_notes_relayed", "Note events accepted and relayed.")
        notes.add_metric([], m.notes_relayed)
        yield notes
        yield m.relay_latency.family()
        yield m.scoring.family()


# -- wiring ------------------------------------------------------------------------------


# server.services.limits_counter's kinds →
# (scope, kind) labels of tutti_rate_limit_rejections_total.
REJECTION_LABELS = {
    "rest_user": ("user", "rest"),
    "rest_ip": ("ip", "rest"),
    "events": ("connection", "event"),
    "notes": ("connection", "notes"),
    "connections": ("user", "connections"),
    "payload": ("request", "payload"),
    "room_full": ("room", "room_full"),
    "invite": ("room", "invite"),
}


def record_rejection(
    target: web.Application | Metrics | CollectorRegistry, scope: str, kind: str
) -> None:
    """Count one rate-limit rejection in ``tutti_rate_limit_rejections_total{scope, kind}``.

    ``target``: the aiohttp application (its :data:`server.appkeys.METRICS`), a :class:`Metrics`,
    or the application's ``CollectorRegistry``. ``scope`` is what the limit
    counts per (``user``, ``ip``, ``connection``, …), ``kind`` what was
    limited (``rest``, ``event``, ``notes``, …). Does nothing for an
    application without metrics.
    """
    metrics = _resolve(target)
    if metrics is not None:
        metrics.rejection(scope, kind)


def _resolve(target: Any) -> Metrics | None:
    if isinstance(target, Metrics):
        return target
    if isinstance(target, CollectorRegistry):
        return getattr(target, "tutti_metrics", None)
    if isinstance(target, web.Application):
        return target.get(METRICS_KEY)
    raise TypeError(f"expected an Application, Metrics or CollectorRegistry, not {target!r}")


async def metrics_handler(request: web.Request) -> web.Response:
    """``GET /metrics``: the Prometheus text exposition."""
    body = request.app[METRICS_KEY].exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def install(app: web.Application, *, manager: RoomManager, engine: AsyncEngine) -> Metrics:
    """Create the app's :class:`Metrics`, hook the manager, the engine and the fan-out
    (when it stamps publish times: :class:`server.realtime.fanout.RoomChannelManager`), and add
    ``GET /metrics``."""
    metrics = Metrics(manager)
    metrics.instrument_engine(engine)
    manager.metrics = metrics
    if hasattr(manager.sio.manager, "on_lag"):
        manager.sio.manager.on_lag = metrics.pubsub_received
    app[METRICS_KEY] = metrics
    app.router.add_get("/metrics", metrics_handler)

    def count(kind: str) -> None:
        scope, label = REJECTION_LABELS.get(kind, ("other", kind))
        metrics.rejection(scope, label)

    limits_counter.on_rejection(count)

    async def detach(_app: web.Application) -> None:
        limits_counter.off_rejection(count)

    app.on_cleanup.append(detach)
    return metrics
