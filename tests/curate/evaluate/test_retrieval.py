"""Retrieval with random-weight tiny CLIP and YOLO / YOLO-World models built from configs (nothing downloaded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("torch")
pytest.importorskip("transformers")

from curate.errors import UserError  # noqa: E402
from curate.evaluate.database import EmbeddingIndex, build_database, load_database  # noqa: E402
from curate.evaluate.retrieval import ClipEmbedder, RegionDetector, Retriever, crop_regions, rank_concepts  # noqa: E402
from tests.support.clip import build_tiny_clip, make_concept_folder, make_image  # noqa: E402


@pytest.fixture(scope="session")
def built_db(tmp_path_factory, tiny_clip) -> Path:
    root = tmp_path_factory.mktemp("concepts")
    src = make_concept_folder(root / "src")
    build_database(src, root / "db", tiny_clip, device="cpu", batch_size=3)
    return root / "db"


def test_rank_concepts_dedups_and_breaks_ties_by_row_order():
    index = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [1.0, 0.0]])
    concepts = ["<A>", "<B>", "<A>", "<C>"]
    hits = rank_concepts(np.array([[1.0, 0.0]]), index, concepts, ["a0", "b0", "a1", "c0"], k=3)
    assert [h.concept for h in hits] == ["<A>", "<C>", "<B>"]  # <A> (row 0) ties <C> (row 3): earlier row first
    assert hits[0].image == "a0" and hits[0].distance == pytest.approx(0.0)
    assert hits[2].distance == pytest.approx(np.sqrt(2))


def test_crop_regions_whole_image_first_and_tiny_boxes_dropped():
    im = make_image(1)
    crops = crop_regions(im, [(10.4, 5.0, 30.6, 25.0), (0, 0, 2, 2), (-5, -5, 100, 100)])
    assert crops[0] is im
    assert [c.size for c in crops[1:]] == [(21, 20), (64, 48)]


@pytest.mark.slow
def test_exact_copy_retrieves_its_own_concept_first(built_db, tiny_clip, tiny_yolo):
    db = load_database(built_db)
    index = EmbeddingIndex.load(built_db)
    embedder = ClipEmbedder(tiny_clip, device="cpu", batch_size=4)
    detector = RegionDetector(tiny_yolo, device="cpu", conf=0.0, imgsz=64, max_regions=5, batch_size=2)
    queries = [Image.open(db.resolve(img)).convert("RGB") for img in index.images]
    results = Retriever(index, embedder, detector).retrieve(queries, k=2, batch_size=3)
    assert len(results) == len(index.images)
    for row, hits in enumerate(results):
        assert hits[0].concept == index.concepts[row]
        assert hits[0].distance == pytest.approx(0.0, abs=1e-3)
        assert len(hits) == 2 and hits[0].concept != hits[1].concept
    # deterministic: the same call gives the same ranking
    again = Retriever(index, embedder, detector).retrieve(queries[:3], k=2, batch_size=2)
    assert [[h.concept for h in r] for r in again] == [[h.concept for h in r] for r in results[:3]]


def test_pipeline_with_yolo_world_vocabulary_from_database_categories(built_db, tiny_clip, tiny_world):
    db = load_database(built_db)
    index = EmbeddingIndex.load(built_db)
    embedder = ClipEmbedder(tiny_clip, device="cpu")
    detector = RegionDetector(tiny_world, device="cpu", conf=0.0, imgsz=64, max_regions=4)
    assert detector.is_world
    vocab = db.categories()
    assert vocab == ["cat", "dog", "object", "person", "plush toy"]
    detector.set_vocabulary(vocab, embedder.embed_text(vocab))
    assert detector.model.model.names == vocab
    scene = Image.new("RGB", (160, 96), "white")
    scene.paste(make_image(0), (0, 0))
    scene.paste(make_image(201), (90, 40))
    boxes = detector.boxes([scene])[0]
    assert 0 < len(boxes) <= 4
    hits = Retriever(index, embedder, detector).retrieve([scene], k=4)[0]
    assert len({h.concept for h in hits}) == 4
    assert all(h.concept in db.concepts and index.concepts[index.images.index(h.image)] == h.concept for h in hits)


def test_wrong_width_text_features_are_refused(tiny_world):
    detector = RegionDetector(tiny_world, device="cpu")
    with pytest.raises(UserError, match="expects 512-d"):
        detector.set_vocabulary(["dog"], np.ones((1, 16), dtype=np.float32))


def test_index_refuses_a_different_clip_model(built_db, tmp_path):
    other = ClipEmbedder(build_tiny_clip(tmp_path / "other", projection_dim=16, seed=1), device="cpu")
    with pytest.raises(UserError, match="different CLIP model"):
        Retriever(EmbeddingIndex.load(built_db), other)


def test_missing_model_paths_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="CLIP model folder not found"):
        ClipEmbedder(tmp_path / "none")
    with pytest.raises(UserError, match="detector weights not found"):
        RegionDetector(tmp_path / "none.pt")
    pytest.importorskip("ultralytics")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot load detector weights"):
        RegionDetector(bad)


def test_db_retrieve_command(built_db, tiny_clip, tiny_yolo, tmp_path, capsys):
    import json
    import shutil

    from curate.cli import main

    db = load_database(built_db)
    queries = {}
    for name in ("Anya", "Bluey", "G_cat"):
        shutil.copy(db.resolve(db.concepts[f"<{name}>"].images[1]), tmp_path / f"{name}.png")
        queries[f"{name}.png"] = [f"<{name}>"]
    (tmp_path / "queries.json").write_text(json.dumps(queries))
    records = tmp_path / "retrieved.json"
    args = [
        "db",
        "retrieve",
        str(built_db),
        "--queries",
        str(tmp_path / "queries.json"),
        "--clip",
        str(tiny_clip),
        "--detector",
        str(tiny_yolo),
        "--device",
        "cpu",
        "--out",
        str(records),
        "--format",
        "json",
    ]
    assert main(args) == 0, capsys.readouterr().err
    out = json.loads(capsys.readouterr().out)
    assert list(out) == list(queries)
    for image, truths in queries.items():
        assert len(out[image]) == 2 and out[image][0]["concept"] == truths[0]
        assert out[image][0]["image"] == db.concepts[truths[0]].images[1] and out[image][0]["distance"] < 1e-3
    rows = json.loads(records.read_text())
    assert [r[1] for r in rows] == list(queries.values()) and rows[0][3] == "retrieval top-2"
    assert main(["eval", "grounding", str(records), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["recall"] == 100.0

    # plain images, table output
    assert (
        main(
            [
                "db",
                "retrieve",
                str(built_db),
                str(tmp_path / "Anya.png"),
                "--clip",
                str(tiny_clip),
                "--top-k",
                "3",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert "<Anya> (0.000)" in capsys.readouterr().out
    assert main(["db", "retrieve", str(built_db), "--clip", str(tiny_clip)]) == 2
    assert "give query images or --queries" in capsys.readouterr().err


def test_ultralytics_does_not_change_how_pillow_reports_a_corrupt_image(tmp_path):
    """Importing ultralytics patches PIL.Image.open (a corrupt file then raised ModuleNotFoundError('pi_heif'))."""
    from PIL import UnidentifiedImageError

    from curate.evaluate.retrieval import ultralytics_offline

    ultralytics_offline()
    pytest.importorskip("ultralytics")
    from ultralytics import YOLO  # noqa: F401  (the import that patches Pillow)

    ultralytics_offline()
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"<html>not an image</html>")
    with pytest.raises(UnidentifiedImageError):
        Image.open(bad)
