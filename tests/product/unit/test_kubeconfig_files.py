"""Kubeconfig credentials touch the disk only as 0600 files that are gone once the client is done."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import yaml

from tasks.clients import kubeconfig_file, kubernetes_api_client

KEY_MARKER = b"-----BEGIN PRIVATE KEY-----\nnot-a-real-key\n-----END PRIVATE KEY-----\n"


def kubeconfig() -> str:
    encoded = base64.b64encode(KEY_MARKER).decode()
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "admin",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443",
                                               "certificate-authority-data": encoded}}],
        "users": [{"name": "u", "user": {"client-certificate-data": encoded, "client-key-data": encoded}}],
        "contexts": [{"name": "admin", "context": {"cluster": "c", "user": "u"}}],
    })


def test_client_credentials_live_in_private_files_removed_after_the_block():
    with kubernetes_api_client(kubeconfig()) as api:
        key_file = Path(api.configuration.key_file)
        assert key_file.read_bytes() == KEY_MARKER
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert not key_file.exists() and not key_file.parent.exists()


def test_a_second_client_for_the_same_kubeconfig_gets_fresh_files():
    with kubernetes_api_client(kubeconfig()) as first:
        first_key = first.configuration.key_file
    with kubernetes_api_client(kubeconfig()) as second:
        assert second.configuration.key_file != first_key
        assert os.path.exists(second.configuration.key_file)


def test_kubeconfig_file_for_tools_is_0600_and_removed():
    with kubeconfig_file(kubeconfig()) as path:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert not os.path.exists(path)
