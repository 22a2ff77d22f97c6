"""`repic inspect`: composition tables that match the manifest, and a contact sheet per task."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from curate.errors import UserError
from curate.materialize.manifest import read_manifest
from curate.materialize.pipeline import build
from curate.report.inspect import ROW_H, composition, pick_examples, write_contact_sheet
from tests.support.corpus import tiny_corpus, write_recipe


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("insp")
    corpus = tiny_corpus(tmp / "corpus")
    return build(write_recipe(tmp, corpus, total=40), tmp / "out", workers=1, log=lambda m: None)


def test_composition_matches_the_manifest(built):
    comp = composition(built)
    counts = read_manifest(built)["counts"]
    assert comp["total"] == counts["total"]
    assert comp["task_source"] == counts["by_task_source"]
    assert comp["oct_answers"] == counts["oct_answers"]
    assert comp["names_per_example"]["oct"] == {1: counts["by_task"]["oct"]}
    assert comp["images_per_example"]["vlt"] == {1: counts["by_task"]["vlt"]}
    for _task, s in comp["image_sizes"].items():
        assert s["width"][0] % 28 == 0 and s["height"][2] % 28 == 0  # stored in the model frame
        assert s["pixels_max"] <= 200704  # the demo recipe's max_pixels


def test_contact_sheet_shows_examples_of_every_task(built, tmp_path):
    picked = pick_examples(built, 2)
    tasks = [r["task"] for r in picked]
    assert tasks == sorted(tasks, key=["oct", "vlt", "ict_single", "ict_multi"].index)
    assert all(tasks.count(t) == 2 for t in set(tasks)) and len(set(tasks)) == 4
    out = write_contact_sheet(built, tmp_path / "sheet.png", per_task=2)
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[1] >= 8 * ROW_H
        # thumbnails are drawn: the image area is not blank
        assert len(np.unique(np.asarray(im.crop((0, 0, 150, im.size[1])).convert("L")))) > 20
    assert write_contact_sheet(built, tmp_path / "again.png", per_task=2).read_bytes() == out.read_bytes()


def test_not_a_build(tmp_path):
    with pytest.raises(UserError, match="holds no shards"):
        composition(tmp_path)
