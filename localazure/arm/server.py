"""`python -m localazure serve`: run the emulator over HTTPS and publish endpoint.json once it answers."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any, TextIO

import uvicorn

from localazure.arm.app import create_app, start_providers, stop_providers
from localazure.arm.context import Emulator
from localazure.arm.knobs import Knobs
from localazure.arm.providers import ResourceProvider
from localazure.arm.tls import ensure_tls

log = logging.getLogger(__name__)

ENDPOINT_FILE = "endpoint.json"
# The pid of the serving process, written as soon as it holds the state directory (before endpoint.json),
# so `local down` can stop an emulator still starting up.
SERVE_PID_FILE = "serve.pid"
HOST = "127.0.0.1"


def _previous_port(state_dir: Path) -> int:
    marker = state_dir / "port"
    with contextlib.suppress(OSError, ValueError):
        return int(marker.read_text().strip())
    return 0


def bind_socket(port: int | None, state_dir: Path) -> socket.socket:
    """Bind the listening socket: the requested port, else the one used last time if free, else any free port."""
    candidates = [port] if port else [_previous_port(state_dir), 0]
    last_error: OSError | None = None
    for candidate in candidates:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, candidate))
        except OSError as exc:
            sock.close()
            last_error = exc
            continue
        sock.listen(512)
        sock.set_inheritable(True)
        return sock
    raise OSError(f"cannot listen on {HOST}:{port}: {last_error}") from last_error


def write_private_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON atomically with mode 0600."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    os.replace(tmp, path)


def endpoint_info(emulator: Emulator, port: int, ca_bundle: Path) -> dict[str, Any]:
    """What clients need to reach this emulator (written to endpoint.json)."""
    return {
        "resource_manager_endpoint": emulator.base_url + "/",
        "authority_host": emulator.base_url,
        "tenant_id": emulator.tenant_id,
        "subscription_id": emulator.subscription_id,
        "client_id": emulator.admin_app_id,
        "client_secret": emulator.admin_secret,
        "object_id": emulator.admin_object_id,
        "ca_bundle": str(ca_bundle),
        "pid": os.getpid(),
        "port": port,
        "clusters": emulator.knobs.current.clusters,
        "state_dir": str(emulator.state_dir),
    }


def serve(state_dir: Path, port: int | None, knobs: Knobs, providers: list[ResourceProvider]) -> None:
    """Run `providers` (the composition root's list) until SIGINT/SIGTERM. endpoint.json appears once
    /healthz answers and is removed on exit."""
    state_dir = state_dir.expanduser().resolve()
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = _lock_state_dir(state_dir)
    # A stop may come at any moment of the start-up (adopting kept clusters starts their processes in the
    # background): from here on it only sets a flag, and every path out of serve() stops the clusters.
    stop_requested = threading.Event()
    server_box: list[uvicorn.Server] = []

    def request_stop(signum: int, frame: object) -> None:
        stop_requested.set()
        for running in server_box:
            running.should_exit = True

    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, request_stop)
    (state_dir / SERVE_PID_FILE).write_text(str(os.getpid()))
    try:
        _serve_locked(state_dir, port, knobs, providers, stop_requested, server_box)
    finally:
        (state_dir / SERVE_PID_FILE).unlink(missing_ok=True)
        lock.close()


def _serve_locked(state_dir: Path, port: int | None, knobs: Knobs, providers: list[ResourceProvider],
                  stop_requested: threading.Event, server_box: list[uvicorn.Server]) -> None:
    endpoint_path = state_dir / ENDPOINT_FILE
    endpoint_path.unlink(missing_ok=True)
    tls = ensure_tls(state_dir / "tls")
    sock = bind_socket(port, state_dir)
    actual_port = sock.getsockname()[1]
    (state_dir / "port").write_text(str(actual_port))
    emulator = Emulator(state_dir, knobs, f"https://{HOST}:{actual_port}")
    try:
        _serve_emulator(emulator, providers, state_dir, sock, actual_port, tls, endpoint_path, stop_requested,
                        server_box)
    finally:
        endpoint_path.unlink(missing_ok=True)
        emulator.operations.close()
        stop_providers(emulator)


def _serve_emulator(emulator: Emulator, providers: list[ResourceProvider], state_dir: Path, sock: socket.socket,
                    actual_port: int, tls: Any, endpoint_path: Path, stop_requested: threading.Event,
                    server_box: list[uvicorn.Server]) -> None:
    app = create_app(emulator, providers)
    emulator.operations.prune_finished()
    interrupted = emulator.operations.fail_interrupted()
    if interrupted:
        log.warning("%d operation(s) cut off by the previous stop were marked Failed", len(interrupted))
    start_providers(emulator)
    marked = emulator.operations.fail_interrupted_resources(interrupted)
    if marked:
        log.warning("resource(s) left mid-operation by the previous stop were marked Failed: %s", ", ".join(marked))

    config = uvicorn.Config(
        app, ssl_certfile=str(tls.server_cert), ssl_keyfile=str(tls.server_key),
        log_level=os.environ.get("FLEETFLOW_LOCAL_LOG_LEVEL", "warning"), lifespan="off",
        timeout_keep_alive=30, timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    server_box.append(server)

    def publish_when_started() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.02)
        if server.started:
            write_private_json(endpoint_path, endpoint_info(emulator, actual_port, tls.ca_cert))
            log.warning("local Azure listening on %s (state %s)", emulator.base_url, state_dir)

    threading.Thread(target=publish_when_started, name="publish-endpoint", daemon=True).start()
    # uvicorn re-raises the stop signal once it has shut down; the handlers installed in serve() only set
    # a flag, so the process lives on until the clusters are stopped.
    if stop_requested.is_set():
        return
    server.run(sockets=[sock])


class StateDirBusy(RuntimeError):
    """Another emulator already serves this state directory."""


def _lock_state_dir(state_dir: Path) -> TextIO:
    # One emulator per state directory: two would overwrite each other's state.json.
    handle = open(state_dir / "serve.lock", "w")  # noqa: SIM115 - held for the life of the server
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        handle.close()
        raise StateDirBusy(f"another local Azure already serves {state_dir}") from exc
    return handle
