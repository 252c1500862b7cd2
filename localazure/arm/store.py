"""Persistent emulator state: named tables of JSON records in one file, rewritten atomically on change.

Keys of resource-like tables are lower-cased Resource Manager ids, because Resource Manager ids are
case-insensitive while the casing a caller first used is kept inside the record.
"""

from __future__ import annotations

import copy
import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

Record = dict[str, Any]

STATE_FORMAT = 1


class StateStore:
    """Thread-safe tables (`resources`, `principals`, `roleAssignments`, `operations`, ...) saved to one file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._tables: dict[str, dict[str, Record]] = {}
        self._depth = 0
        self._dirty = False
        if path.exists():
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise RuntimeError(f"cannot read emulator state {path}: {exc}") from exc
            if data.get("format") != STATE_FORMAT:
                raise RuntimeError(f"emulator state {path} has format {data.get('format')!r}, want {STATE_FORMAT}")
            self._tables = data["tables"]

    @contextmanager
    def transaction(self) -> Iterator[StateStore]:
        """Hold the lock across several reads/writes; the file is written once when the outermost block ends."""
        with self._lock:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
                if self._depth == 0 and self._dirty:
                    self._save()

    def _changed(self) -> None:
        self._dirty = True
        if self._depth == 0:
            self._save()

    def _save(self) -> None:
        # Compact: json's C encoder serves only indent=None, and the whole state is written on every change.
        payload = json.dumps({"format": STATE_FORMAT, "tables": self._tables}, sort_keys=True, separators=(",", ":"))
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(payload)
        os.replace(tmp, self.path)
        self._dirty = False

    def _table(self, table: str) -> dict[str, Record]:
        return self._tables.setdefault(table, {})

    def get(self, table: str, key: str) -> Record | None:
        """A copy of one record, or None."""
        with self._lock:
            record = self._table(table).get(key.lower())
            return copy.deepcopy(record) if record is not None else None

    def put(self, table: str, key: str, record: Record) -> Record:
        """Insert or replace a record (stored as a copy)."""
        with self._lock:
            self._table(table)[key.lower()] = copy.deepcopy(record)
            self._changed()
            return copy.deepcopy(record)

    def update(self, table: str, key: str, change: Callable[[Record], None]) -> Record | None:
        """Apply `change` to a record in place under the lock; returns the new copy, or None if absent."""
        with self._lock:
            record = self._table(table).get(key.lower())
            if record is None:
                return None
            change(record)
            self._changed()
            return copy.deepcopy(record)

    def delete(self, table: str, key: str) -> Record | None:
        """Remove a record; returns what was removed."""
        with self._lock:
            record = self._table(table).pop(key.lower(), None)
            if record is not None:
                self._changed()
            return record

    def values(self, table: str, where: Callable[[Record], bool] | None = None) -> list[Record]:
        """Copies of all records of a table (optionally filtered), in key order."""
        with self._lock:
            table_data = self._table(table)
            return [copy.deepcopy(table_data[k]) for k in sorted(table_data) if where is None or where(table_data[k])]

    def keys_under(self, table: str, prefix: str) -> list[str]:
        """Keys of records whose key equals `prefix` or lies below it (`prefix/...`)."""
        low = prefix.lower().rstrip("/")
        with self._lock:
            return sorted(k for k in self._table(table) if k == low or k.startswith(low + "/"))
