"""The local-mode Prefect server: started by the demo, kept running for the user to explore, stopped by
`fleetflow local down`.

It listens on a stable loopback port (FLEETFLOW_PREFECT_PORT, default 4280, the next free one if that is
taken by something else) with its database under the local-mode home, and records its pid and port in
`server.json` there, so any later command finds it. A temporary variant serves tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PORT_ENV = "FLEETFLOW_PREFECT_PORT"
DEFAULT_PORT = 4280
RECORD = "server.json"


class PrefectServerError(RuntimeError):
    """The local Prefect server could not be started; names its log."""


@dataclass(frozen=True)
class ServerRecord:
    """A running local Prefect server."""

    pid: int
    port: int

    @property
    def api_url(self) -> str:
        """Its API address (PREFECT_API_URL)."""
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def ui_url(self) -> str:
        """Its UI address."""
        return f"http://127.0.0.1:{self.port}"


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def healthy(api_url: str) -> bool:
    """Whether a Prefect API answers its health check."""
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2):  # noqa: S310 (loopback http)
            return True
    except OSError:
        return False


def _spawn(home: Path, port: int) -> subprocess.Popen[bytes]:
    api_url = f"http://127.0.0.1:{port}/api"
    home.mkdir(parents=True, exist_ok=True)
    # The UI learns its API address from these; without them it would call the default port 4200.
    environment = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                   "PREFECT_UI_API_URL": api_url, "PREFECT_SERVER_API_PORT": str(port)}
    environment.pop("PREFECT_API_URL", None)
    prefect = shutil.which("prefect", path=str(Path(sys.executable).parent)) or "prefect"
    with open(home / "server.log", "ab") as log:
        return subprocess.Popen([prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=environment, start_new_session=True)


def _wait_healthy(server: subprocess.Popen[bytes], api_url: str, home: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not healthy(api_url):
        if server.poll() is not None:
            raise PrefectServerError(f"the Prefect server exited; see {home / 'server.log'}")
        if time.monotonic() > deadline:
            raise PrefectServerError(f"the Prefect server did not answer within {timeout:g}s; see "
                                     f"{home / 'server.log'}")
        time.sleep(0.5)


def _stop_group(pid: int, timeout: float = 30) -> None:
    # The server runs in its own session; signal the whole group so its uvicorn child stops too.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def running(home: Path) -> ServerRecord | None:
    """The recorded server of this home, if it is alive and answers."""
    try:
        data = json.loads((home / RECORD).read_text())
        record = ServerRecord(int(data["pid"]), int(data["port"]))
    except (OSError, ValueError, KeyError):
        return None
    return record if healthy(record.api_url) else None


def ensure_running(home: Path) -> ServerRecord:
    """Start the local Prefect server unless it already runs; returns it (idempotent)."""
    existing = running(home)
    if existing is not None:
        return existing
    wanted = int(os.environ.get(PORT_ENV) or DEFAULT_PORT)  # 0: any free port
    port = wanted if wanted and _port_free(wanted) else _free_port()
    server = _spawn(home, port)
    record = ServerRecord(server.pid, port)
    try:
        _wait_healthy(server, record.api_url, home)
    except PrefectServerError:
        _stop_group(server.pid)
        raise
    (home / RECORD).write_text(json.dumps({"pid": record.pid, "port": record.port}))
    return record


def stop(home: Path) -> bool:
    """Stop the recorded server of this home; True when one was running."""
    try:
        data = json.loads((home / RECORD).read_text())
    except (OSError, ValueError):
        return False
    (home / RECORD).unlink(missing_ok=True)
    pid = int(data.get("pid", 0))
    if pid <= 0:
        return False
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    _stop_group(pid)
    return True


def drain_prefect_workers() -> None:
    """Send the last log lines and events of this process before it stops talking to the server."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    EventsWorker.drain_all(timeout=10)


@contextlib.contextmanager
def temporary_prefect_server(home: Path) -> Iterator[str]:
    """Start a Prefect server (API and UI) in `home`, point this process at it, and stop it afterwards."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    port = _free_port()
    server = _spawn(home, port)
    url = f"http://127.0.0.1:{port}/api"
    try:
        _wait_healthy(server, url, home)
        with temporary_settings(updates={PREFECT_API_URL: url}):
            try:
                yield url
            finally:
                drain_prefect_workers()
    finally:
        _stop_group(server.pid)
