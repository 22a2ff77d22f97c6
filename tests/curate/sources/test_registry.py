"""Source kinds: one module declares a kind (spec model, reader, input files, tasks, pair sampler) and registers it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import pyarrow.parquet as pq
import pytest
import yaml

from curate.errors import UserError
from curate.materialize.pipeline import build
from curate.plan.pairs import DetectionPairs
from curate.recipe import SourceSpecBase, load_recipe, recipe_hash
from curate.sources.registry import BUILTIN, SourceKind, kinds_for, register, source_kind, source_kinds, unregister
from curate.sources.tables import SourceTables, from_rows
from tests.support.corpus import make_photo

# ---------------------------------------------------------------- a source kind declared here, outside the package
KIND_NAME = "shelf-photos"


class ShelfSource(SourceSpecBase):
    kind: Literal["shelf-photos"]
    root: Path  # photos plus labels.json: {file: [[category, x1, y1, x2, y2], ...]}


def shelf_files(spec: ShelfSource) -> list[Path]:
    return [spec.root]


def read_shelf(name: str, spec: ShelfSource) -> SourceTables:
    labels = json.loads((spec.root / "labels.json").read_text())
    images, objects = [], []
    for n, (file, boxes) in enumerate(sorted(labels.items())):
        images.append({"source": name, "image_id": str(n), "path": str(spec.root / file), "width": 640, "height": 480})
        for i, (category, *box) in enumerate(boxes):
            objects.append(
                {"source": name, "image_id": str(n), "object_id": f"{n}-{i}", "category": category, "bbox": box}
            )
    return SourceTables(
        name, KIND_NAME, {"images": from_rows("images", images), "objects": from_rows("objects", objects)}
    )


SHELF = SourceKind(
    name=KIND_NAME, spec=ShelfSource, read=read_shelf, input_files=shelf_files, tasks=("oct",), pairs=DetectionPairs
)


@pytest.fixture
def shelf_kind():
    register(SHELF)
    yield SHELF
    unregister(KIND_NAME)


def shelf_recipe(tmp_path: Path, **source) -> Path:
    root = tmp_path / "shelf"
    labels = {}
    for n in range(8):
        make_photo(root / f"p{n}.jpg", seed=n)
        labels[f"p{n}.jpg"] = [["mug" if n % 2 else "kettle", 100, 80, 300, 260]]
    (root / "labels.json").write_text(json.dumps(labels))
    recipe = {
        "name": "shelf",
        "version": "1.0.0",
        "seed": 5,
        "sources": {"shelf": {"kind": KIND_NAME, "root": "shelf", **source}},
        "mixture": {"total": 6, "proportions": {"oct": 1.0}},
        "output": {"examples_per_shard": 8},
    }
    path = tmp_path / "shelf.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


# ---------------------------------------------------------------- tests
def test_builtin_kinds_are_registered_in_order_with_their_tasks():
    kinds = source_kinds()
    assert tuple(kinds)[: len(BUILTIN)] == BUILTIN
    assert kinds_for("oct") == ("coco", "objects365", "celeba", "subjects200k")
    assert kinds_for("ict_multi") == ("coco", "objects365") and kinds_for("vlt") == ("refcoco",)
    assert {k for k, v in kinds.items() if v.image_namespace == "mscoco"} == {"coco", "refcoco"}
    assert source_kind("celeba").pairs.no_hard_negatives  # CelebA negatives take no hard_k
    with pytest.raises(KeyError, match="no source kind 'nope'"):
        source_kind("nope")


def test_a_kind_registered_from_a_test_builds_an_oct_example(tmp_path, shelf_kind):
    assert kinds_for("oct")[-1] == KIND_NAME
    recipe = load_recipe(shelf_recipe(tmp_path))
    assert isinstance(recipe.sources["shelf"], ShelfSource)
    assert recipe_hash(recipe) == recipe_hash(load_recipe(shelf_recipe(tmp_path / "elsewhere")))  # root is local

    out = build(shelf_recipe(tmp_path), tmp_path / "out", workers=1, log=lambda m: None)
    [shard] = sorted((out / "data").glob("*.parquet"))
    rows = pq.read_table(shard).to_pylist()
    assert len(rows) == 6 and {r["task"] for r in rows} == {"oct"} and {r["source"] for r in rows} == {"shelf"}
    assert {json.loads(r["solution"]) for r in rows} == {"yes", "no"}
    assert all(len(r["images"]) == 2 for r in rows)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["sources"]["shelf"]["kind"] == KIND_NAME


def test_recipe_errors_for_a_registered_kind_keep_file_line_key(tmp_path, shelf_kind):
    path = shelf_recipe(tmp_path, colour="red")
    with pytest.raises(UserError, match=r"shelf\.yaml:\d+: sources\.shelf\.colour: unknown key"):
        load_recipe(path)


def test_unknown_kind_lists_the_registered_ones(tmp_path, shelf_kind):
    path = shelf_recipe(tmp_path)
    path.write_text(path.read_text().replace(f"kind: {KIND_NAME}", "kind: shelf"))
    with pytest.raises(UserError) as err:
        load_recipe(path)
    assert ": sources.shelf: Input tag 'shelf' found using 'kind' does not match any of the expected tags: " in str(
        err.value
    )
    assert "'coco', 'objects365', 'celeba', 'subjects200k', 'refcoco', 'shelf-photos'" in str(err.value)


def test_without_registration_the_kind_is_unknown(tmp_path):
    with pytest.raises(UserError, match=f"Input tag '{KIND_NAME}' found using 'kind' does not match"):
        load_recipe(shelf_recipe(tmp_path))


def test_inconsistent_kinds_are_refused(shelf_kind):
    with pytest.raises(ValueError, match="needs the field kind: Literal\\['other'\\]"):
        register(SourceKind("other", ShelfSource, read_shelf, shelf_files))
    with pytest.raises(ValueError, match="need a pair sampler"):
        register(SourceKind(KIND_NAME, ShelfSource, read_shelf, shelf_files, tasks=("oct",)))
    with pytest.raises(ValueError, match="unknown task"):
        register(SourceKind(KIND_NAME, ShelfSource, read_shelf, shelf_files, tasks=("ocr",)))
    with pytest.raises(ValueError, match="already registered"):
        register(SourceKind(KIND_NAME, ShelfSource, read_shelf, shelf_files))
    assert register(SHELF) is SHELF  # registering the same kind again is harmless
