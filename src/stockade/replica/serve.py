"""Running a replica: one process, or a main process (the hub), N HTTP worker processes and a
batch process."""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from uvicorn.supervisors import Multiprocess

from stockade.api import create_app
from stockade.config import Settings
from stockade.core import Resource
from stockade.core.resource import prepare_store
from stockade.replica.batches import BatchProcess
from stockade.replica.http_protocol import protocol_class
from stockade.replica.hub import HubThread
from stockade.replica.process import configure_logging, freeze_heap, hub_resource, started_child

KeysCreated = Callable[[dict[str, str]], None]


def serve(settings: Settings, on_keys_created: KeysCreated) -> None:
    """Serve until stopped. One worker is one process; with more, every worker accepts on the
    same port, batch lines run in a process of their own, and all of them reach the rate limits
    and the local models through this process's hub."""
    configure_logging(settings)
    options = _uvicorn_options(settings)
    workers = settings.workers
    if workers == 1:
        app = create_app(Resource(settings), on_keys_created=on_keys_created, on_started=freeze_heap)
        uvicorn.run(app, **options)
        return
    # Before any worker starts: one migration, and the admin keys printed once, not per worker.
    created = prepare_store(settings)
    if created:
        on_keys_created(created)
    with tempfile.TemporaryDirectory(prefix="stockade-") as private:  # mode 0700: ours alone
        path = Path(private) / "hub.sock"
        # Read by prometheus-client when each worker imports it: every worker's metrics go to
        # files there, and /metrics on any worker reports the sum (telemetry/metrics.py).
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(Path(private, "metrics").resolve())
        Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir()
        hub = HubThread(path, settings.limits.window_seconds)
        hub.start()
        batches = BatchProcess(settings, path)
        batches.start()
        try:
            factory = functools.partial(worker_app, settings, path, os.getpid())
            config = uvicorn.Config(factory, factory=True, workers=workers, **options)
            Multiprocess(config, sockets=[config.bind_socket()]).run()
        finally:
            batches.stop()
            hub.stop()


def worker_app(settings: Settings, hub: Path, main: int) -> Starlette:
    """The application of one HTTP worker process (uvicorn calls it in the worker), whose main
    process is ``main``; batch lines run in the batch process instead."""
    configure_logging(settings)
    return create_app(
        hub_resource(settings, hub), on_started=functools.partial(started_child, main), run_batches=False
    )


def _uvicorn_options(settings: Settings) -> dict[str, Any]:
    return {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop",
        # uvicorn's httptools protocol with limits on every connection, before authentication.
        "http": protocol_class(settings.connections),
        "timeout_keep_alive": settings.connections.keep_alive_seconds,
        # No route is a WebSocket; an upgraded connection would leave the limits above behind.
        "ws": "none",
        "log_level": settings.log_level,
        "access_log": False,  # Stockade writes its own, in batches (telemetry/diagnostics.py)
        "timeout_graceful_shutdown": 10,
        # X-Forwarded-For is believed only from auth.trusted_proxies, by Stockade itself.
        "proxy_headers": False,
        "ssl_certfile": settings.tls_certificate,
        "ssl_keyfile": settings.tls_private_key,
    }
