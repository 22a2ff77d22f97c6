"""Session fixtures of the evaluate tests: tiny random-weight CLIP and YOLO models."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.clip import build_tiny_clip


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> Path:
    return build_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny-clip")


@pytest.fixture(scope="session")
def tiny_yolo(tmp_path_factory) -> Path:
    from curate.evaluate.retrieval import ultralytics_offline

    ultralytics_offline()
    pytest.importorskip("ultralytics")
    from ultralytics import YOLO

    path = tmp_path_factory.mktemp("yolo") / "tiny-yolo.pt"
    YOLO("yolov8n.yaml").save(str(path))  # built from the packaged config: random weights, no download
    return path


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory) -> Path:
    from curate.evaluate.retrieval import ultralytics_offline

    ultralytics_offline()
    pytest.importorskip("ultralytics")
    from ultralytics import YOLOWorld

    path = tmp_path_factory.mktemp("yolo") / "tiny-world.pt"
    YOLOWorld("yolov8s-worldv2.yaml").save(str(path))
    return path
