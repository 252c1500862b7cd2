"""Paths the tests read: the repository root and the test data beside the tests."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
