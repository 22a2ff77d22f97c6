"""Test-wide settings: offline Hugging Face clients pointed at a loopback Hub.

The Hub emulator (tests/support/hub_emulator.py) listens on 127.0.0.1 at a free
port chosen here, before any Hugging Face module is imported, because
huggingface_hub reads HF_ENDPOINT and HF_HUB_DISABLE_XET at import time.
"""

from __future__ import annotations

import os
import socket
import tempfile

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


HUB_PORT = _free_port()
HUB_TOKEN = "hf_test_" + "x" * 24
_HF_HOME = tempfile.mkdtemp(prefix="repic-hf-home-")
os.environ.update(
    {
        "HF_ENDPOINT": f"http://127.0.0.1:{HUB_PORT}",
        "HF_TOKEN": HUB_TOKEN,
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HOME": _HF_HOME,
        "HF_DATASETS_CACHE": os.path.join(_HF_HOME, "datasets"),
        "REPIC_PROGRESS": "0",
        "TOKENIZERS_PARALLELISM": "false",
        "YOLO_OFFLINE": "1",
        "YOLO_AUTOINSTALL": "False",
        "YOLO_VERBOSE": "False",
        "YOLO_CONFIG_DIR": os.path.join(_HF_HOME, "ultralytics"),
    }
)


@pytest.fixture(scope="session")
def hub_server(tmp_path_factory):
    """The loopback Hub for the whole session (see tests/support/hub_emulator.py)."""
    from tests.support.hub_emulator import HubEmulator

    server = HubEmulator(port=HUB_PORT, storage=tmp_path_factory.mktemp("hub-storage"), token=HUB_TOKEN)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def hub(hub_server):
    """A clean loopback Hub for one test (repos wiped, failure injection cleared)."""
    hub_server.reset()
    yield hub_server
