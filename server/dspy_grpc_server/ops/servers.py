"""Starting and stopping the HTTP side ports: the dashboard and the Prometheus scrape endpoint."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable

from ..api.authorization import Authorizer
from ..app.application import Application

log = logging.getLogger("dspy_grpc_server.ops")


class OpsServers:
    """The started side servers; a port is ``None`` when that server is off."""

    def __init__(self) -> None:
        self._runners: list = []
        self.dashboard_port: int | None = None
        self.prometheus_port: int | None = None

    async def _start(self, web_app, host: str, port: int, ssl_context: ssl.SSLContext | None = None) -> int:
        from aiohttp import web

        runner = web.AppRunner(web_app, access_log=None, handle_signals=False, handler_cancellation=True,
                               shutdown_timeout=1.0)
        await runner.setup()
        self._runners.append(runner)
        await web.TCPSite(runner, host, port, ssl_context=ssl_context).start()
        return runner.addresses[0][1]

    async def stop(self) -> None:
        runners, self._runners = self._runners, []
        for runner in runners:
            await runner.cleanup()


def _tls_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


async def start_ops_servers(app: Application, authorizer: Authorizer, *, health: Callable[[], str]) -> OpsServers:
    """Start what the config enables (nothing by default); stop them with :meth:`OpsServers.stop`."""

    config, servers = app.config, OpsServers()
    try:
        if config.dashboard_enabled:
            from .dashboard import Dashboard

            tls = _tls_context(config.tls_cert_file, config.tls_key_file) if config.tls_cert_file else None
            dashboard = Dashboard(app, authorizer, health=health, refresh_s=config.dashboard_refresh_s,
                                  tls=tls is not None)
            servers.dashboard_port = await servers._start(dashboard.web_app(), config.dashboard_host,
                                                          config.dashboard_port, tls)
            log.info("dashboard on %s://%s:%d/", "https" if tls else "http", config.dashboard_host,
                     servers.dashboard_port)
        reader = app.telemetry_setup.prometheus_reader
        if reader is not None:
            from aiohttp import web

            from .prometheus import exposition

            async def metrics(_request: web.Request) -> web.Response:
                return web.Response(body=exposition(reader), headers={"Content-Type": "text/plain; version=0.0.4"})

            metrics_app = web.Application()
            metrics_app.router.add_get("/metrics", metrics)
            servers.prometheus_port = await servers._start(metrics_app, config.prometheus_host, config.prometheus_port)
            log.info("Prometheus metrics on http://%s:%d/metrics", config.prometheus_host, servers.prometheus_port)
    except BaseException:
        await servers.stop()
        raise
    return servers
