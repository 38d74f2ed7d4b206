"""``ApiUser``: REST traffic of a musician browsing the library and keeping a logbook.

A guest login, then a mix (task weights in brackets) of: saving a quick log
``POST /api/practice/quick-log`` [6] (the practice-log save), reading the log
list [3] and one log [2], patching a log [1], a manual log
``POST /api/practice/logs`` [1], a practice timer (``sessions/start`` then
``sessions/{id}/end``) [1], the session list [1], the piece list [2] and one
piece [1], a goal [1] and the goal list [1], the profile [1], and a logbook
pull ``GET /api/sync/pull`` from cursor 0 [1]. Between two requests it thinks
``--think-seconds`` on average. Ids in paths are grouped as ``{id}``.
Statuses other than the expected one are failures.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

from locust import tag, task

from tutti_load.options import option
from tutti_load.socket_user import TuttiUser

ACTIVITIES = ("repertoire", "technique", "scales", "etudes", "sight_reading", "warm_up")


class ApiUser(TuttiUser):
    """A musician using the REST API."""

    weight = 1

    def wait_time(self) -> float:
        mean = float(option(self.environment, "think_seconds", 1.5))
        return random.uniform(0.5 * mean, 1.5 * mean)

    def on_start(self) -> None:
        self.login("api")
        self.logs: list[str] = []
        self.timer: str | None = None
        self.pieces: list[str] = []

    def _request(self, method: str, path: str, name: str, expect: int, **kwargs):
        with self.client.request(
            method, path, name=name, headers=self.auth, catch_response=True, **kwargs
        ) as resp:
            if resp.status_code != expect:
                resp.failure(f"{resp.status_code}: {resp.text[:200]}")
                return None
            return resp.json() if resp.content else {}

    # -- the logbook -----------------------------------------------------------------------

    @tag("rest", "save")
    @task(6)
    def quick_log(self) -> None:
        body = {
            "activity_type": random.choice(ACTIVITIES),
            "duration_seconds": float(random.randint(5, 90) * 60),
            "self_rating": random.randint(1, 5),
            "notes": "locust quick log",
        }
        row = self._request(
            "POST", "/api/practice/quick-log", "/api/practice/quick-log", 201, json=body
        )
        if row is not None:
            self.logs.append(row["id"])

    @tag("rest")
    @task(3)
    def list_logs(self) -> None:
        self._request("GET", "/api/practice/logs?limit=20", "/api/practice/logs", 200)

    @tag("rest")
    @task(2)
    def get_log(self) -> None:
        if self.logs:
            self._request(
                "GET",
                f"/api/practice/logs/{random.choice(self.logs)}",
                "/api/practice/logs/{id}",
                200,
            )

    @tag("rest")
    @task
    def patch_log(self) -> None:
        if self.logs:
            self._request(
                "PATCH",
                f"/api/practice/logs/{random.choice(self.logs)}",
                "/api/practice/logs/{id} [PATCH]",
                200,
                json={"self_rating": random.randint(1, 5)},
            )

    @tag("rest", "save")
    @task
    def manual_log(self) -> None:
        start = datetime.now(UTC) - timedelta(days=random.randint(0, 30), hours=2)
        body = {
            "activity_type": random.choice(ACTIVITIES),
            "start_time": start.isoformat(),
            "duration_seconds": 1800.0,
            "work_title": "Chorale BWV 66.6",
        }
        row = self._request(
            "POST", "/api/practice/logs", "/api/practice/logs [POST]", 201, json=body
        )
        if row is not None:
            self.logs.append(row["id"])

    @tag("rest")
    @task
    def practice_timer(self) -> None:
        if self.timer is None:
            row = self._request(
                "POST",
                "/api/practice/sessions/start",
                "/api/practice/sessions/start",
                201,
                json={"activity_type": random.choice(ACTIVITIES)},
            )
            self.timer = row["id"] if row is not None else None
        else:
            timer, self.timer = self.timer, None
            self._request(
                "POST",
                f"/api/practice/sessions/{timer}/end",
                "/api/practice/sessions/{id}/end",
                200,
                json={"self_rating": random.randint(1, 5)},
            )

    @tag("rest")
    @task
    def list_sessions(self) -> None:
        self._request("GET", "/api/practice/sessions?limit=20", "/api/practice/sessions", 200)

    @tag("rest")
    @task
    def goals(self) -> None:
        if random.random() < 0.5:
            self._request(
                "POST",
                "/api/goals",
                "/api/goals [POST]",
                201,
                json={"title": f"Goal {uuid.uuid4().hex[:6]}", "progress": 10.0},
            )
        else:
            self._request("GET", "/api/goals", "/api/goals", 200)

    @tag("rest")
    @task
    def profile(self) -> None:
        self._request("GET", "/api/users/me", "/api/users/me", 200)

    @tag("rest")
    @task
    def logbook_pull(self) -> None:
        self._request("GET", "/api/sync/pull?cursor=0&limit=100", "/api/sync/pull", 200)

    # -- the library -------------------------------------------------------------------------

    @tag("rest")
    @task(2)
    def list_pieces(self) -> None:
        body = self._request("GET", "/api/pieces", "/api/pieces", 200)
        if body is not None:
            self.pieces = [p["id"] for p in body["pieces"]]

    @tag("rest")
    @task
    def get_piece(self) -> None:
        if self.pieces:
            self._request(
                "GET", f"/api/pieces/{random.choice(self.pieces)}", "/api/pieces/{id}", 200
            )
