"""One HTTPS listener per vault on 127.0.0.1: the vault's data plane at its own `vaultUri`.

Azure gives every vault a host name (`<name>.vault.azure.net`). Local Azure stays on loopback with no
host names, so a vault is told apart by its port instead: `vaultUri` is `https://127.0.0.1:<port>/`,
served with the emulator's certificate (valid for 127.0.0.1). The port is kept in the vault's record
and bound again after a restart (a new one only if it was taken meanwhile).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from localazure.arm.tls import ensure_tls

log = logging.getLogger(__name__)

HOST = "127.0.0.1"


@dataclass
class _Listener:
    port: int
    server: uvicorn.Server
    thread: threading.Thread


class VaultListeners:
    """Starts and stops the per-vault servers; knows which vault a port belongs to."""

    def __init__(self, tls_dir: Path, app_for: Callable[[str], ASGIApp]) -> None:
        self._tls = ensure_tls(tls_dir)
        self._app_for = app_for
        self._lock = threading.Lock()
        self._by_vault: dict[str, _Listener] = {}

    def ensure(self, vault_key: str, port: int = 0) -> int:
        """Serve the vault `vault_key` (on `port` if free, else on a new one); returns the port it listens on."""
        with self._lock:
            running = self._by_vault.get(vault_key)
            if running is not None:
                return running.port
            sock = self._bind(port)
            actual = sock.getsockname()[1]
            config = uvicorn.Config(
                self._app_for(vault_key), ssl_certfile=str(self._tls.server_cert),
                ssl_keyfile=str(self._tls.server_key), lifespan="off", timeout_keep_alive=30,
                timeout_graceful_shutdown=1, log_level=os.environ.get("FLEETFLOW_LOCAL_LOG_LEVEL", "warning"),
            )
            server = uvicorn.Server(config)
            thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                                      name=f"vault-{actual}")
            thread.start()
            self._by_vault[vault_key] = _Listener(actual, server, thread)
            return actual

    @staticmethod
    def _bind(port: int) -> socket.socket:
        for candidate in ([port, 0] if port else [0]):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((HOST, candidate))
            except OSError:
                sock.close()
                log.warning("vault port %d is taken; the vault gets a new vaultUri", candidate)
                continue
            sock.listen(128)
            return sock
        raise OSError(f"cannot listen on {HOST}")

    def stop(self, vault_key: str) -> None:
        """Stop serving one vault (soft delete, purge)."""
        with self._lock:
            listener = self._by_vault.pop(vault_key, None)
        if listener is not None:
            listener.server.should_exit = True
            listener.thread.join(timeout=5)

    def stop_all(self) -> None:
        """Stop every vault's server (emulator shutdown)."""
        for vault_key in list(self._by_vault):
            with contextlib.suppress(Exception):
                self.stop(vault_key)
