"""Operations surfaces served beside the gRPC port: the live dashboard and the Prometheus endpoint.

Both are aiohttp applications on their own ports, started only when configured (see
:func:`.servers.start_ops_servers`).
"""
