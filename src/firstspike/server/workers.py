"""`firstspike serve --workers N`: N server processes behind one port.

Why processes: one server runs its event loop and its model thread under one GIL, so it tops out near
1.2 cores whatever the machine has (docs/benchmarks.md, server section). N processes use N cores. A stream lives in one worker from `start` to its decision,
so workers share nothing but the metrics.

How: every worker binds its own listening socket with SO_REUSEPORT on the same address, and the
kernel spreads new connections evenly over them. The parent never accepts a connection; it holds
the port (bound, not listening) so that `--port 0` names one port for all workers, then supervises:
it forwards SIGTERM/SIGINT (each worker drains on its own, see serving.py), restarts a worker that
dies, and exits when all have stopped. Metrics go through prometheus-client's multiprocess mode, so
`/metrics` on any worker reports the whole server.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import threading
import time

from firstspike.server.settings import ServerSettings

log = logging.getLogger("firstspike.server")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# A worker that keeps dying right after it starts is broken, not unlucky: stop restarting it.
RESTARTS_ALLOWED = 5
RESTART_WINDOW_S = 60.0


class WorkersError(RuntimeError):
    """The worker processes cannot be started here."""


def worker_settings(settings: ServerSettings) -> ServerSettings:
    """One worker's share: `max_sessions` is the whole server's limit, split evenly."""
    share = max(1, math.ceil(settings.max_sessions / settings.workers))
    return settings.model_copy(update={"max_sessions": share, "workers": 1})


def listening_socket(host: str, port: int, *, listen: bool) -> socket.socket:
    """A TCP socket bound with SO_REUSEPORT, so several processes can share the address."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise WorkersError("--workers above 1 needs SO_REUSEPORT (Linux); run one worker per container instead")
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise WorkersError(f"cannot bind {host}:{port}: {err.strerror or err}") from None
    if listen:
        sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _refuse_if_taken(host: str, port: int) -> None:
    """SO_REUSEPORT would let us share a port that another server already listens on (and take half its
    connections); a plain bind, as a single-process server would do, finds that out first."""
    if port == 0:
        return
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as err:
            raise WorkersError(f"cannot bind {host}:{port}: {err.strerror or err}") from None


def run_worker(settings_json: str, index: int) -> None:
    """Entry point of one worker process (spawned, so it starts from a clean interpreter)."""
    from firstspike.gc_tuning import calm_the_garbage_collector
    from firstspike.server.app import create_app
    from firstspike.server.logs import configure_logging
    from firstspike.server.serving import DrainingServer, uvicorn_config

    # Signals come from the supervisor only: a Ctrl-C sent to the terminal's whole process group would
    # otherwise reach a worker twice (directly and forwarded), and a second signal means "stop now".
    os.setpgrp()
    settings = ServerSettings.model_validate_json(settings_json)
    configure_logging(settings.log_format, settings.log_level)
    _drain_when_orphaned(os.getppid())
    app = create_app(settings)
    sock = listening_socket(settings.host, settings.port, listen=True)  # join the port only once able to serve
    log.info("worker %d (pid %d) ready", index, os.getpid())
    server = DrainingServer(uvicorn_config(app, settings), app.state.ctx)
    calm_the_garbage_collector()
    server.run(sockets=[sock])


def _drain_when_orphaned(parent: int) -> None:
    """A worker whose supervisor was killed (SIGKILL, OOM) must not serve on forever: drain and exit."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        log.warning("supervisor %d is gone; worker %d drains and exits", parent, os.getpid())
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="supervisor-watch", daemon=True).start()


class Supervisor:
    """Starts the workers, forwards shutdown signals to them, and restarts one that dies."""

    def __init__(self, settings: ServerSettings):
        self.settings = settings
        self.context = multiprocessing.get_context("spawn")
        self.workers: list[multiprocessing.process.BaseProcess | None] = []
        self.stopping = False
        self.exit_code = 0
        self._restarts: list[float] = []

    def run(self) -> int:
        _refuse_if_taken(self.settings.host, self.settings.port)
        holder = listening_socket(self.settings.host, self.settings.port, listen=False)
        port = holder.getsockname()[1]
        metrics_dir = tempfile.mkdtemp(prefix="firstspike-metrics-")
        os.environ[MULTIPROC_ENV] = metrics_dir  # inherited by every spawned worker
        share = worker_settings(self.settings.model_copy(update={"port": port}))
        self._settings_json = share.model_dump_json()
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        log.info("starting %d workers on %s:%d (up to %d streams each)",
                 self.settings.workers, self.settings.host, port, share.max_sessions)
        try:
            self.workers = [self._start(index) for index in range(self.settings.workers)]
            return self._supervise()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._stop_all(signal.SIGKILL, wait_s=0.0)
            holder.close()
            os.environ.pop(MULTIPROC_ENV, None)
            shutil.rmtree(metrics_dir, ignore_errors=True)

    def _start(self, index: int) -> multiprocessing.process.BaseProcess:
        process = self.context.Process(target=run_worker, args=(self._settings_json, index),
                                       name=f"firstspike-worker-{index}", daemon=False)
        process.start()
        return process

    def _supervise(self) -> int:
        while any(worker is not None for worker in self.workers):
            for index, worker in enumerate(self.workers):
                if worker is None or worker.is_alive():
                    continue
                self._mark_dead(worker.pid)
                self.workers[index] = None
                if self.stopping:
                    continue
                if self._may_restart():
                    log.warning("worker %d (pid %s) exited with code %s; restarting it", index, worker.pid, worker.exitcode)
                    self.workers[index] = self._start(index)
                else:
                    log.error("workers keep exiting (worker %d: code %s); stopping the server", index, worker.exitcode)
                    self.exit_code = 1
                    self._on_signal(signal.SIGTERM, None)
            time.sleep(0.2)
        return self.exit_code

    def _may_restart(self) -> bool:
        now = time.monotonic()
        self._restarts = [t for t in self._restarts if now - t < RESTART_WINDOW_S] + [now]
        return len(self._restarts) <= RESTARTS_ALLOWED

    def _on_signal(self, sig, frame) -> None:
        """First signal: every worker drains. A second one: every worker stops at once."""
        self.stopping = True
        for worker in self.workers:
            if worker is not None and worker.is_alive():
                try:
                    os.kill(worker.pid, sig)
                except ProcessLookupError:
                    pass

    def _stop_all(self, sig: int, wait_s: float) -> None:
        for worker in self.workers:
            if worker is not None and worker.is_alive():
                os.kill(worker.pid, sig)
                worker.join(wait_s or None)

    @staticmethod
    def _mark_dead(pid: int | None) -> None:
        if pid is None:
            return
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
