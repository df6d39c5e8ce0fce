"""A real PostgreSQL server for the tests: its own data directory in a temp dir, a free
port on loopback, trust authentication, one database ``tolk``. The server binaries come
from Debian's ``postgresql`` package (``.ci/run`` installs it where it is missing). The
server refuses to run as root: when the tests do, it runs as the ``postgres`` user."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from stack import free_port


def server_binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    initdb = found[-1] if found else shutil.which("initdb")
    if not initdb:
        raise RuntimeError(
            "PostgreSQL's server binaries are missing: apt-get install postgresql (.ci/run does)"
        )
    return Path(initdb).parent


class PostgresServer:
    """Started by ``start()``, removed (data and all) by ``stop()``."""

    def __init__(self) -> None:
        self.bin = server_binaries()
        # Its own directory under the system's temp dir: the postgres user must reach it,
        # and pytest's temp dirs are private to the user running the tests.
        self.root = Path(tempfile.mkdtemp(prefix="tolk-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            self._as = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.root, "postgres")

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://tolk@127.0.0.1:{self.port}/tolk"

    def _run(self, *argv: str) -> None:
        subprocess.run([*self._as, *argv], check=True, capture_output=True, timeout=120)

    def start(self) -> PostgresServer:
        if not self.data.exists():
            self._run(
                str(self.bin / "initdb"), "-D", str(self.data), "-U", "tolk", "--auth=trust",
                "-E", "UTF8", "--no-sync",
            )  # fmt: skip
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options,
            "-l", str(self.root / "server.log"), "-w", "start",
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            created = subprocess.run(
                [str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "tolk",
                 "tolk"],
                capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            if created.returncode == 0 or "already exists" in created.stderr:
                return self
            if time.monotonic() > deadline:
                raise RuntimeError(f"createdb failed: {created.stderr}")
            time.sleep(0.2)

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
