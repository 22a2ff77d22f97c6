"""`repic export --format repic-json`: the official RePIC / VLM-R1 JSON plus image files."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from curate.errors import UserError
from curate.materialize.manifest import read_manifest
from curate.materialize.pipeline import build
from curate.report.export import REWARD_METHOD, export_build, to_record
from tests.support.corpus import tiny_corpus, write_recipe


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("exp")
    corpus = tiny_corpus(tmp / "corpus")
    return build(write_recipe(tmp, corpus, total=40), tmp / "out", workers=1, log=lambda m: None)


def test_export_writes_every_row_with_its_reward_method_and_images(built, tmp_path):
    path = export_build(built, tmp_path / "repic" / "train.json")
    records = json.loads(path.read_text())
    m = read_manifest(built)
    assert len(records) == m["counts"]["total"]
    assert {r["task"] for r in records} == set(m["counts"]["by_task"])
    for r in records:
        assert r["accu_reward_method"] == REWARD_METHOD[r["task"]]
        images = r["image"] if isinstance(r["image"], list) else [r["image"]]
        assert r["problem"].count("<image>") == len(images) >= 1
        for rel in images:
            assert not rel.startswith("/") and (path.parent / rel).is_file()
        if r["task"] == "oct":
            assert r["solution"] in ("yes", "no")
        elif r["task"] == "vlt":
            with Image.open(path.parent / images[-1]) as im:
                w, h = im.size
            x1, y1, x2, y2 = r["solution"]
            assert all(isinstance(v, int) for v in r["solution"]) and 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
        elif r["task"] == "ict_single":
            assert r["solution"] in r["names"] and r["solution"].startswith("<")
        else:
            assert isinstance(r["solution"], list) and set(r["solution"]) <= set(r["names"])


def test_folder_target_and_single_image_records(built, tmp_path):
    path = export_build(built, tmp_path / "folder")
    assert path == tmp_path / "folder" / "train.json"
    vlt = [r for r in json.loads(path.read_text()) if r["task"] == "vlt"]
    assert vlt and all(isinstance(r["image"], str) for r in vlt)


def test_to_record_layout():
    row = {
        "id": "x",
        "task": "ict_multi",
        "names": ["<a>", "<b>"],
        "solution": '["<a>", "<b>"]',
        "prompt": [
            {"role": "system", "content": [{"type": "text", "text": "Be exact."}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "<a>:"},
                    {"type": "image", "text": None},
                    {"type": "text", "text": " <b>:"},
                    {"type": "image", "text": None},
                    {"type": "image", "text": None},
                    {"type": "text", "text": " Caption it."},
                ],
            },
        ],
    }
    rec = to_record(row, ["i/0.jpg", "i/1.jpg", "i/2.jpg"])
    assert rec["problem"] == "<a>:<image> <b>:<image><image> Caption it."
    assert rec["system"] == "Be exact." and rec["solution"] == ["<a>", "<b>"]
    assert rec["accu_reward_method"] == "yes_no_name_multi" and rec["image"] == ["i/0.jpg", "i/1.jpg", "i/2.jpg"]


def test_bad_input_is_a_user_error(built, tmp_path):
    with pytest.raises(UserError, match="unknown export format"):
        export_build(built, tmp_path / "x", fmt="llava")
    with pytest.raises(UserError, match="not a build"):
        export_build(tmp_path, tmp_path / "y")
