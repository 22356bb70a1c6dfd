"""The live dashboard: one HTML page plus a JSON snapshot and a server-sent-events stream of it.

Routes (on ``dashboard.host:dashboard.port``):

* ``GET /`` — the page (static: it holds no data; with authentication on it asks for an API key
  with the ``admin`` scope and keeps it in the tab's ``sessionStorage``).
* ``GET /api/auth`` — ``{"required": true|false}``: whether the other ``/api`` routes need a key.
* ``GET /api/snapshot`` — health, providers, jobs, LM usage over time, programs (their revisions,
  RPC runs and job-driven traffic) and spend this month by program, API key id and model, with the
  configured budgets.
* ``GET /api/events`` — ``text/event-stream``: a ``snapshot`` event every ``dashboard.refresh_s``.
* ``GET /api/jobs/{evaluations|optimizations}/{id}`` — one job: state, progress, its progress and
  best score over time (as seen by this process), and an optimization's candidates with scores.

Nothing served holds prompts, completions, inputs or API key secrets (key *ids* name spenders).

With authentication on, the snapshot and events routes need ``Authorization: Bearer <key>`` of a key with the
``admin`` scope (401 / 403 otherwise, as JSON with the error's reason).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from ..api.authorization import Authorizer
from ..app.application import Application
from ..core.errors import DspyGrpcError, PermissionDenied
from ..core.money import MICROS_PER_USD
from ..store.usage import DIMENSION_COLUMNS, UsageQuery

log = logging.getLogger("dspy_grpc_server.dashboard")

PAGE = Path(__file__).with_name("static") / "dashboard.html"
#: Stored programs listed (by id), and rows per spend table.
PROGRAM_ROWS = 50
SPEND_ROWS = 50
#: Candidates listed on a job's page.
CANDIDATE_ROWS = 200
_NO_TRAFFIC = {"lm_calls": 0, "tokens": 0, "cost_usd": 0.0}
#: What of a job's spec the page may show (never LM scripts, metrics' content or inputs).
_SPEC_FIELDS = ("program_id", "revision_id", "dataset_id", "optimizer", "num_threads", "activate")


async def job_detail(app: Application, collection: str, job_id: str) -> dict[str, Any]:
    """One job for its page: state, progress, spec summary, progress/score history, candidates."""

    jobs = app.evaluations if collection == "evaluations" else app.optimizations
    record = await jobs.get(job_id)
    name = f"{collection}/{job_id}"
    detail: dict[str, Any] = {
        "job": name, "kind": record.kind, "state": record.state,
        "spec": {key: record.spec[key] for key in _SPEC_FIELDS if key in record.spec},
        "progress": dict(record.progress), "result": {
            key: value for key, value in (record.result or {}).items() if isinstance(value, (int, float, str, bool))},
        "error": (record.error or {}).get("reason", ""),
        "create_time": record.create_time.isoformat(),
        "history": app.activity.job_history.get(name, []),
        "candidates": [],
    }
    if collection == "optimizations":
        candidates, _ = await app.optimizations.candidates(job_id, page_size=CANDIDATE_ROWS, page_token="")
        detail["candidates"] = [{"index": c.index, "label": c.label, "score": c.score} for c in candidates]
    return detail


class Dashboard:
    def __init__(self, app: Application, authorizer: Authorizer, *, health: Callable[[], str],
                 refresh_s: float = 1.0, tls: bool = False) -> None:
        self._app, self._authorizer, self._health = app, authorizer, health
        self._refresh_s = refresh_s
        self._tls = tls
        self._page = PAGE.read_bytes()
        self._latest: dict[str, tuple[datetime, str]] = {}

    def web_app(self) -> web.Application:
        application = web.Application(middlewares=[self._auth_middleware])
        application.router.add_get("/", self._index)
        application.router.add_get("/api/auth", self._auth)
        application.router.add_get("/api/snapshot", self._snapshot)
        application.router.add_get("/api/events", self._events)
        application.router.add_get("/api/jobs/{collection}/{job_id}", self._job)
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

    async def _job(self, request: web.Request) -> web.Response:
        collection, job_id = request.match_info["collection"], request.match_info["job_id"]
        jobs = {"evaluations": self._app.evaluations, "optimizations": self._app.optimizations}.get(collection)
        if jobs is None:
            return web.json_response({"error": "NOT_FOUND", "message": f"no job collection {collection!r}"},
                                     status=404)
        try:
            detail = await job_detail(self._app, collection, job_id)
        except DspyGrpcError as error:
            return web.json_response({"error": error.reason, "message": error.message},
                                     status=404 if error.reason.endswith("NOT_FOUND") else 400)
        return web.json_response(detail, headers={"Cache-Control": "no-store"})

    # ------------------------------------------------------------ data

    async def snapshot(self) -> dict[str, Any]:
        activity = self._app.activity.snapshot()
        return {
            **activity,
            "health": {"status": self._health(), "auth": self._authorizer.enabled, "tls": self._tls},
            "providers": await self._providers(activity),
            "program_table": await self._program_table(activity),
            "spend": await self._spend(),
        }

    async def _program_table(self, activity: dict[str, Any]) -> list[dict[str, Any]]:
        """Stored programs (the first :data:`PROGRAM_ROWS` by id) with their active and newest
        revisions, the revisions loaded here with their calls, RPC runs and job-driven LM traffic;
        then inline modules."""

        try:
            programs, _ = await self._app.programs.list(page_size=PROGRAM_ROWS, page_token="")
        except Exception:  # noqa: BLE001 - the dashboard shows what it can
            log.exception("program list unavailable")
            programs = []
        traffic = {(t["program"], t["source"]): t for t in activity["traffic"]}
        workers: dict[str, list[dict[str, Any]]] = {}
        for worker in self._app.workers.workers():
            workers.setdefault(worker.program_id, []).append(
                {"revision": worker.revision_id, "calls": worker.metrics.calls, "errors": worker.metrics.errors})
        running_jobs: dict[str, int] = {}
        for job in activity["jobs"]:
            if job["state"] == "running" and job.get("program"):
                running_jobs[job["program"]] = running_jobs.get(job["program"], 0) + 1
        rows = []
        for program in programs:
            record = program.record
            pid = record.program_id
            rows.append({
                "program": pid, "active_revision": record.active_revision_id,
                "latest_revision": await self._latest_revision(pid, record.update_time),
                "loaded": sorted(workers.get(pid, []), key=lambda w: w["revision"]),
                "runs": activity["programs"].get(pid, {"calls": 0, "errors": 0, "p50_ms": 0, "p99_ms": 0}),
                "rpc": traffic.get((pid, "rpc"), _NO_TRAFFIC), "jobs": traffic.get((pid, "job"), _NO_TRAFFIC),
                "running_jobs": running_jobs.get(pid, 0),
            })
        if "inline" in activity["programs"] or ("", "rpc") in traffic:
            rows.append({"program": "inline", "active_revision": "", "latest_revision": "", "loaded": [],
                         "runs": activity["programs"].get("inline", {"calls": 0, "errors": 0, "p50_ms": 0, "p99_ms": 0}),
                         "rpc": traffic.get(("", "rpc"), _NO_TRAFFIC), "jobs": traffic.get(("", "job"), _NO_TRAFFIC),
                         "running_jobs": 0})
        return rows

    async def _latest_revision(self, program_id: str, updated: datetime) -> str:
        """The newest revision's id (cached until the program changes)."""

        cached = self._latest.get(program_id)
        if cached is None or cached[0] != updated:
            revisions, _ = await self._app.programs.list_revisions(program_id, page_size=1, page_token="")
            cached = self._latest[program_id] = (updated, revisions[0].record.revision_id if revisions else "")
        return cached[1]

    async def _spend(self) -> dict[str, Any]:
        """This UTC month's spend from the usage ledger, by program, API key id and model, and the
        configured budgets with what they have spent in their current period."""

        month_start = datetime.now(UTC).date().replace(day=1)
        spend: dict[str, Any] = {"since": month_start.isoformat()}
        try:
            for dimension in ("program", "api_key", "model"):
                rows, _, total = await self._app.usage.query(
                    UsageQuery(start_day=month_start, group_by=(dimension,)), page_size=SPEND_ROWS)
                spend[dimension] = [{"name": getattr(row, DIMENSION_COLUMNS[dimension]), "calls": row.calls,
                                     "cache_hits": row.cache_hits,
                                     "tokens": row.prompt_tokens + row.completion_tokens,
                                     "cost_usd": row.cost_usd} for row in rows]
                spend["total_usd"] = total.cost_usd
        except Exception:  # noqa: BLE001 - the dashboard shows what it can
            log.exception("usage ledger unavailable")
        try:
            views, _ = await self._app.budgets.list(page_size=SPEND_ROWS, page_token="")
        except Exception:  # noqa: BLE001 - the dashboard shows what it can
            log.exception("budgets unavailable")
            views = []
        spend["budgets"] = [{"name": view.budget.label, "scope": "program" if view.budget.program_id else "api_key",
                             "subject": view.budget.program_id or view.budget.api_key_id,
                             "period": view.budget.period, "limit_usd": view.budget.limit_micros / MICROS_PER_USD,
                             "spent_usd": view.spend.spent_micros / MICROS_PER_USD} for view in views]
        return spend

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
