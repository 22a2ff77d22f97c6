"""A build over a demo corpus holding a huge image and a symlink out of its folder (issue 9, items 1 and 10)."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import polars as pl
import pytest

from curate.materialize.pipeline import build
from curate.recipe import load_recipe, recipe_hash
from tests.support.corpus import tiny_corpus, write_png_header, write_recipe


@pytest.fixture(scope="module")
def corrupted(tmp_path_factory) -> tuple[Path, dict]:
    tmp = tmp_path_factory.mktemp("untrusted")
    corpus = tiny_corpus(tmp / "demo")
    ann_path = corpus / "coco/annotations/instances_train2017.json"
    ann = json.loads(ann_path.read_text())
    folder = corpus / "coco/train2017"
    usable = [im for im in ann["images"] if (folder / im["file_name"]).is_file()]
    huge, linked, inside = usable[0], usable[1], usable[2]
    (folder / huge["file_name"]).unlink()
    write_png_header(folder / huge["file_name"], (20000, 20000))  # a PNG under a .jpg name, as found in the wild
    huge.update(width=20000, height=20000)
    (tmp / "outside").mkdir()
    shutil.move(folder / linked["file_name"], tmp / "outside" / linked["file_name"])
    (folder / linked["file_name"]).symlink_to(tmp / "outside" / linked["file_name"])
    ann_path.write_text(json.dumps(ann))
    return corpus, {"huge": str(huge["id"]), "linked": str(linked["id"]), "inside": str(inside["id"])}


def test_build_quarantines_huge_and_escaping_images_without_warnings(corrupted, tmp_path, capfd):
    corpus, ids = corrupted
    recipe = write_recipe(tmp_path, corpus, total=20, quality={"max_bad_fraction": 0.2})
    with warnings.catch_warnings():
        warnings.simplefilter("error", Warning)  # a DecompressionBombWarning would fail the build
        warnings.simplefilter("ignore", DeprecationWarning)
        out = build(recipe, tmp_path / "out", workers=1, log=lambda m: None)
    assert "DecompressionBomb" not in "".join(capfd.readouterr())
    q = pl.read_parquet(out / "quarantine.parquet").filter(source="coco")
    huge = q.filter(record_id=ids["huge"], reason="image_too_large")
    assert huge.height == 1 and huge["stage"][0] == "plan"
    assert "20000x20000 = 400,000,000 pixels, over the limit of 89,478,485" in huge["detail"][0]
    assert q.filter(record_id=ids["linked"], reason="path_outside_root").height == 1
    assert not q.filter(record_id=ids["huge"], reason="image_unreadable").height


def test_the_limit_is_a_recipe_setting_that_enters_the_hash(corrupted, tmp_path):
    corpus, ids = corrupted
    default = load_recipe(write_recipe(tmp_path / "a", corpus))
    assert default.quality.max_image_pixels == 89_478_485
    raised = load_recipe(write_recipe(tmp_path / "b", corpus, quality={"max_image_pixels": 500_000_000}))
    assert raised.quality.max_image_pixels == 500_000_000
    assert recipe_hash(raised) != recipe_hash(default)
    explicit = load_recipe(write_recipe(tmp_path / "c", corpus, quality={"max_image_pixels": 89_478_485}))
    assert recipe_hash(explicit) == recipe_hash(default)  # the default leaves existing recipes' hashes as they were
