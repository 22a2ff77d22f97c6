"""Fixtures of the train tests: a tiny offline Qwen2.5-VL and tiny RePIC build folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.trainbuilds import write_build


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from tests.support.tiny_qwen import build_tiny_qwen

    return build_tiny_qwen(tmp_path_factory.mktemp("tiny-qwen"))


@pytest.fixture
def tiny_build(tmp_path) -> Path:
    return write_build(tmp_path / "builds" / "tiny" / "1.0.0")
