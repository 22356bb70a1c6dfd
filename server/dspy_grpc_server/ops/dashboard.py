"""The live dashboard: one HTML page plus a JSON snapshot and a server-sent-events stream of it.

Routes (on ``dashboard.host:dashboard.port``):

* ``GET /`` — the page (static: it holds no data; with authentication on it asks for an API key
  with the ``admin`` scope and keeps it in the tab's ``sessionStorage``).
* ``GET /api/auth`` — ``{"required": true|false}``: whether the other ``/api`` routes need a key.
* ``GET /api/snapshot`` — health, providers, jobs, LM usage over time, per-program performance.
* ``GET /api/events`` — ``text/event-stream``: a ``snapshot`` event every ``dashboard.refresh_s``.

With authentication on, the snapshot and events routes need ``Authorization: Bearer <key>`` of a key with the
``admin`` scope (401 / 403 otherwise, as JSON with the error's reason).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from aiohttp import web

from ..api.authorization import Authorizer
from ..app.application import Application
from ..core.errors import DspyGrpcError, PermissionDenied

log = logging.getLogger("dspy_grpc_server.dashboard")

PAGE = Path(__file__).with_name("static") / "dashboard.html"


class Dashboard:
    def __init__(self, app: Application, authorizer: Authorizer, *, health: Callable[[], str],
                 refresh_s: float = 1.0, tls: bool = False) -> None:
        self._app, self._authorizer, self._health = app, authorizer, health
        self._refresh_s = refresh_s
        self._tls = tls
        self._page = PAGE.read_bytes()

    def web_app(self) -> web.Application:
        application = web.Application(middlewares=[self._auth_middleware])
        application.router.add_get("/", self._index)
        application.router.add_get("/api/auth", self._auth)
        application.router.add_get("/api/snapshot", self._snapshot)
        application.router.add_get("/api/events", self._events)
        return application

    # ------------------------------------------------------------ auth

    @web.middleware
    async def _auth_middleware(self, request: web.Request, handler: Callable[[web.Request], Awaitable[Any]]):
        if request.path.startswith("/api/") and request.path != "/api/auth" and self._authorizer.enabled:
            header = request.headers.get("Authorization", "")
            try:
                await self._authorizer.authenticate([("authorization", header)] if header else [], "admin")
            except DspyGrpcError as error:
                status = 403 if isinstance(error, PermissionDenied) else 401
                return web.json_response({"error": error.reason, "message": error.message}, status=status)
        return await handler(request)

    # ------------------------------------------------------------ routes

    async def _index(self, request: web.Request) -> web.Response:
        return web.Response(body=self._page, content_type="text/html", charset="utf-8",
                            headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})

    async def _auth(self, request: web.Request) -> web.Response:
        return web.json_response({"required": self._authorizer.enabled})

    async def _snapshot(self, request: web.Request) -> web.Response:
        return web.json_response(await self.snapshot(), headers={"Cache-Control": "no-store"})

    async def _events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
        await response.prepare(request)
        try:
            while True:
                data = json.dumps(await self.snapshot(), separators=(",", ":"))
                await response.write(f"event: snapshot\ndata: {data}\n\n".encode())
                await asyncio.sleep(self._refresh_s)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return response

    # ------------------------------------------------------------ data

    async def snapshot(self) -> dict[str, Any]:
        activity = self._app.activity.snapshot()
        return {
            **activity,
            "health": {"status": self._health(), "auth": self._authorizer.enabled, "tls": self._tls},
            "providers": await self._providers(activity),
        }

    async def _providers(self, activity: dict[str, Any]) -> list[dict[str, Any]]:
        """Every configured model: live call stats plus the provider layer's status (deployments
        with breaker state, headroom and recent errors) where the registry reports one."""

        statuses: dict[str, Any] = {}
        status_of = getattr(self._app.registry, "status", None)
        if callable(status_of):
            try:
                statuses = {status.alias: asdict(status) for status in status_of()}
            except Exception:  # noqa: BLE001 - the dashboard shows what it can
                log.exception("provider status unavailable")
        providers = []
        for alias in self._app.registry.aliases():
            entry: dict[str, Any] = {"alias": alias, **activity["models"].get(alias, {})}
            status = statuses.get(alias)
            deployments = status["deployments"] if status else []
            states = [d["breaker_state"] for d in deployments] or [activity["breakers"].get(alias, "closed")]
            entry["breaker"] = next((s for s in ("open", "half_open") if s in states), "closed")
            entry["deployments"] = deployments
            if status:
                entry["cache"] = status["cache"]
            providers.append(entry)
        return providers
