"""Symlinks cannot lead a reader out of its declared source folder (issue 9, item 1).

The demo corpus is copied and corrupted: image files, a sub-folder and a Parquet shard are replaced by
symlinks to copies outside the source folder. Each escape is quarantined as ``path_outside_root``, decided
from resolved names alone: a link to a FIFO (which would block any ``open``) is refused just the same.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
from pathlib import Path

import pytest

from curate.recipe import load_recipe
from curate.sources.common import source_roots
from tests.support.corpus import tiny_corpus, write_recipe


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    return tiny_corpus(tmp_path_factory.mktemp("corpus") / "demo")


@pytest.fixture
def corpus(pristine, tmp_path) -> Path:
    return Path(shutil.copytree(pristine, tmp_path / "demo", symlinks=True))


def read(corpus: Path, name: str, **spec_changes):
    recipe = load_recipe(write_recipe(corpus.parent / f"recipe-{name}", corpus))
    spec = recipe.sources[name].model_copy(update=spec_changes)
    return importlib.import_module(f"curate.sources.{spec.kind}").read(name, spec), spec


def move_out(path: Path, outside: Path) -> Path:
    """Move ``path`` outside the corpus and leave a symlink to it in its place; return the target."""
    outside.mkdir(parents=True, exist_ok=True)
    target = outside / path.name
    shutil.move(path, target)
    path.symlink_to(target)
    return target


def rows(st, reason: str) -> dict[str, str]:
    """record id -> detail of the quarantined files (not the records that referred to them)."""
    q = st.quarantine.filter(reason=reason)
    if reason == "path_outside_root":
        q = q.filter(q["detail"].str.contains(" resolves to "))
    return dict(zip(q["record_id"].to_list(), q["detail"].to_list()))


def coco_images(corpus: Path) -> list[dict]:
    ann = json.loads((corpus / "coco/annotations/instances_train2017.json").read_text())
    folder = corpus / "coco/train2017"
    return [im for im in ann["images"] if (folder / im["file_name"]).is_file()]


@pytest.mark.timeout(60)
def test_coco_image_links_out_of_the_root_are_quarantined_unopened(corpus, tmp_path):
    first, second = coco_images(corpus)[:2]
    folder = corpus / "coco/train2017"
    target = move_out(folder / first["file_name"], tmp_path / "outside")  # a readable JPEG: today it is used
    (folder / second["file_name"]).unlink()
    os.mkfifo(tmp_path / "outside" / "fifo.jpg")  # opening it would block
    (folder / second["file_name"]).symlink_to(tmp_path / "outside" / "fifo.jpg")
    st, _ = read(corpus, "coco")
    bad = rows(st, "path_outside_root")
    assert set(bad) == {str(first["id"]), str(second["id"])}
    assert str(target) in bad[str(first["id"])]
    assert not st.images.filter(image_id=str(first["id"])).height
    assert not st.objects.filter(image_id=str(first["id"])).height  # its boxes go with it
    # a link that stays inside the root is fine, and so is a root that is itself a link
    inside = folder / "inside-link.jpg"
    third = coco_images(corpus)[2]
    os.replace(folder / third["file_name"], inside)
    (folder / third["file_name"]).symlink_to(inside)
    linked_root = tmp_path / "linked-train2017"
    linked_root.symlink_to(folder)
    st2, _ = read(corpus, "coco", images=linked_root)
    assert set(rows(st2, "path_outside_root")) == set(bad)
    assert st2.images.filter(image_id=str(third["id"])).height == 1


def test_objects365_linked_patch_folder_is_outside(corpus, tmp_path):
    patch = corpus / "objects365/train/patch0"
    names = sorted(p.name for p in patch.iterdir())
    move_out(patch, tmp_path / "elsewhere")
    st, _ = read(corpus, "objects365")
    bad = rows(st, "path_outside_root")
    assert bad and all("patch0" in d and str(tmp_path / "elsewhere") in d for d in bad.values())
    paths = st.images["path"].to_list()
    assert not any(Path(p).name in names for p in paths)


def test_celeba_image_link_is_outside(corpus, tmp_path):
    folder = corpus / "celeba/img_align_celeba"
    victim = sorted(folder.iterdir())[0]
    move_out(victim, tmp_path / "outside")
    st, _ = read(corpus, "celeba")
    assert victim.name in rows(st, "path_outside_root")
    assert victim.name.rsplit(".", 1)[0] not in st.images["image_id"].to_list()


def test_subjects200k_linked_shard_is_quarantined_and_never_read(corpus, tmp_path):
    shard = corpus / "subjects200k/data/train-00001-of-00002.parquet"
    move_out(shard, tmp_path / "outside")
    st, spec = read(corpus, "subjects200k")
    assert shard.name in rows(st, "path_outside_root")
    assert not any("train-00001" in p for p in st.images["path"].to_list())
    from curate.sources import subjects200k

    assert shard not in subjects200k.input_files(spec)  # the index cache never samples its content either


def test_refcoco_image_link_is_outside(corpus, tmp_path):
    folder = corpus / "refcoco/images/train2014"
    st0, _ = read(corpus, "refcoco")
    used = sorted({Path(p).name for p in st0.images["path"].to_list()})
    move_out(folder / used[0], tmp_path / "outside")
    st, _ = read(corpus, "refcoco")
    bad = rows(st, "path_outside_root")
    assert len(bad) == 1 and used[0] in next(iter(bad.values()))
    assert not any(Path(p).name == used[0] for p in st.images["path"].to_list())


def test_source_roots_cover_every_declared_folder(corpus, tmp_path):
    recipe = load_recipe(write_recipe(tmp_path / "r", corpus))
    roots = source_roots(recipe.sources)
    for sub in ("coco/train2017", "objects365/train", "celeba", "subjects200k/data", "refcoco"):
        assert os.path.realpath(corpus / sub) in roots
