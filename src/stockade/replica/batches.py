"""The replica's batch process: with several HTTP workers, batch lines run here, not in them.

Lines that run in an HTTP worker share its event loop with the interactive calls it serves: each
step of an interactive call waits behind the steps of the lines running beside it, and a window's
backfill is a burst of them (docs/performance.md). In a process of their own, at a lower
scheduling priority, the lines get only the CPU the HTTP workers leave. This process reaches the
rate limits and the local models through the hub, as the HTTP workers do, so its lines are
admitted as backfill against the same counters, and a local model's lines still go to its
workers only when they are free.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
from multiprocessing.process import BaseProcess
from pathlib import Path

import uvloop

from stockade.api.api_versions import filter_error_spelling
from stockade.config import Settings
from stockade.core import Resource
from stockade.replica.process import configure_logging, hub_resource, started_child

log = logging.getLogger(__name__)

# Added to the process's nice value: the kernel runs the HTTP workers first whenever both wait
# for a core, and the lines take the rest.
NICENESS = 10
RESTART_SECONDS = 1.0  # between a batch process that died and the next
STOP_SECONDS = 15.0  # to write its last usage records and close before it is killed


def run(settings: Settings, hub: Path, main: int) -> None:
    """The batch process (spawned by ``BatchProcess``): run batch lines until SIGTERM, which the
    main process sends, or which this one sends itself when the main process has gone."""
    os.nice(NICENESS)
    # Ctrl-C reaches the whole process group; the main process stops this one in its own time.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_logging(settings)
    uvloop.run(_run_batches(hub_resource(settings, hub), main))


async def _run_batches(resource: Resource, main: int) -> None:
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    await resource.open()
    try:
        # No start_models: the HTTP workers start the deployed models in the hub, and a model or
        # PHI protection that only a batch line needs is loaded by its first line.
        resource.start_batch_runner(filter_error_spelling)
        started_child(main)
        log.info("batch lines run in process %d, at nice +%d", os.getpid(), NICENESS)
        await stopping.wait()
    finally:
        await resource.close()


class BatchProcess:
    """Keeps one batch process running, started again whenever it dies, until stopped.

    Lines running in a process that died are not lost: their leases run out and the next
    process claims them again (batch/runner.py)."""

    def __init__(self, settings: Settings, hub: Path) -> None:
        self._args = (settings, hub, os.getpid())
        self._context = multiprocessing.get_context("spawn")  # as uvicorn starts the HTTP workers
        self._process: BaseProcess | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name="stockade-batches", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _supervise(self) -> None:
        while True:
            with self._lock:
                if self._stopping.is_set():
                    return
                process = self._context.Process(target=run, args=self._args, name="stockade-batches")
                process.start()
                self._process = process
            process.join()
            if self._stopping.is_set():
                return
            log.warning(
                "the batch process exited (code %s); starting another, which resumes its lines",
                process.exitcode,
            )
            self._stopping.wait(RESTART_SECONDS)

    def stop(self) -> None:
        with self._lock:
            self._stopping.set()
            process = self._process
        if process is not None and process.is_alive():
            process.terminate()
            process.join(STOP_SECONDS)
            if process.is_alive():
                process.kill()
                process.join()
        self._thread.join(STOP_SECONDS)
