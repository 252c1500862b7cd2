"""Values kept encrypted at rest in state.json: Key Vault secrets, registry passwords, storage keys.

AES-256-GCM with a key of its own in `<state>/keys/at-rest.key` (0600, created on first use). Each
value is bound to a context string (e.g. the secret's id and version), so a sealed value copied to
another record does not open there. Plain values never reach the state file or the log.
"""

from __future__ import annotations

import base64
import os
import threading
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from localazure.arm.context import Emulator

KEY_FILE = "at-rest.key"
_lock = threading.Lock()


class SealError(Exception):
    """A sealed value that does not open with this key and context."""


class Sealer:
    """Seals and opens strings with the state directory's at-rest key."""

    def __init__(self, key_path: Path) -> None:
        self._aead = AESGCM(self._load_or_create(key_path))

    @staticmethod
    def _load_or_create(key_path: Path) -> bytes:
        if key_path.exists():
            key = key_path.read_bytes()
            if len(key) != 32:
                raise SealError(f"{key_path} does not hold a 256-bit key")
            return key
        key_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = AESGCM.generate_key(bit_length=256)
        tmp = key_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
        os.replace(tmp, key_path)
        return key

    def seal(self, value: str, context: str) -> str:
        """`value` encrypted and bound to `context` (base64 of nonce + ciphertext)."""
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, value.encode(), context.lower().encode())
        return base64.b64encode(nonce + sealed).decode()

    def open(self, sealed: str, context: str) -> str:
        """The plain value of a sealed one; SealError if the key or context does not match."""
        raw = base64.b64decode(sealed)
        try:
            return self._aead.decrypt(raw[:12], raw[12:], context.lower().encode()).decode()
        except InvalidTag as exc:
            raise SealError("a sealed value does not open with this key and context") from exc


def sealer_of(emulator: Emulator) -> Sealer:
    """The emulator's sealer (one per emulator, key under its state directory)."""
    with _lock:
        if "sealer" not in emulator.services:
            emulator.services["sealer"] = Sealer(emulator.state_dir / "keys" / KEY_FILE)
        sealer: Sealer = emulator.services["sealer"]
        return sealer
