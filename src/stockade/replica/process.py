"""What each process of a replica sets up: its logging, its resource, its heap once started."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
from pathlib import Path

from stockade.config import LOG_FORMAT, Settings
from stockade.core import Resource
from stockade.replica.client import HubClient, HubHost, HubLimiter

log = logging.getLogger(__name__)

PARENT_CHECK_SECONDS = 1.0


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper(), format=LOG_FORMAT)
    # The routines' agents call the API in process through httpx; uvicorn logs those calls already.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def hub_resource(settings: Settings, hub: Path) -> Resource:
    """The resource of a process other than the replica's main one: rate limits and local models
    through the hub (with Redis, limits are shared there, across replicas and so across this
    replica's processes)."""
    client = HubClient(hub)
    limiter = None if settings.redis_url else HubLimiter(client, settings.limits.window_seconds)
    return Resource(settings, limiter=limiter, host=HubHost(settings, client))


def freeze_heap() -> None:
    """Once started, exempt everything loaded so far (the modules, models' metadata, caches:
    some 165,000 objects) from garbage collection. Collections then walk only what requests
    allocate; a full collection of the start-up heap took over 100 ms, paid by whichever request
    triggered it (16% less CPU per request in the gateway benchmark, docs/performance.md)."""
    gc.collect()
    gc.freeze()


def started_child(main: int) -> None:
    """What a child process of the replica does once started: its heap frozen, and its end
    bound to that of ``main``, the replica's main process."""
    freeze_heap()
    end_with(main)


def end_with(main: int) -> None:
    """Stop this process, as SIGTERM stops it, once ``main`` (its parent, the replica's main
    process) has gone, even if it went before this process got this far. Killed (SIGKILL, the
    OOM killer), the main process cannot stop its children, and without it they would go on
    holding the port with no hub behind them."""
    loop = asyncio.get_running_loop()

    def check() -> None:
        if os.getppid() == main:
            loop.call_later(PARENT_CHECK_SECONDS, check)
            return
        log.warning("the replica's main process (%d) has gone: process %d stops", main, os.getpid())
        os.kill(os.getpid(), signal.SIGTERM)

    check()
