"""`repic db build`: concept folders and RAP/RePIC database.json files -> database.json + CLIP index."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from curate.cli import main  # noqa: E402
from curate.errors import UserError  # noqa: E402
from curate.evaluate.database import EmbeddingIndex, build_database, load_database  # noqa: E402
from tests.support.clip import CONCEPTS, build_tiny_clip, make_concept_folder, make_image  # noqa: E402


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return build_tiny_clip(tmp_path_factory.mktemp("clip") / "clip", projection_dim=16)


def test_folder_build_writes_rap_format_index_and_quarantine(tmp_path, clip, capsys):
    src = make_concept_folder(tmp_path / "src")
    (src / "NoInfo").mkdir()
    make_image(7).save(src / "NoInfo" / "a.png")
    (src / "Broken").mkdir()
    (src / "Broken" / "info.txt").write_text("only a broken picture")
    (src / "Broken" / "x.jpg").write_bytes(b"not an image")
    (src / "Anya" / "zz_bad.png").write_bytes(b"\x89PNG garbage")
    (src / "Empty").mkdir()
    (src / "Empty" / "info.txt").write_text("no pictures")
    out = tmp_path / "db"

    assert (
        main(["db", "build", str(src), "--out", str(out), "--clip", str(clip), "--device", "cpu", "--batch-size", "3"])
        == 0
    )
    assert "5 concepts, 10 images, 5 quarantined" in capsys.readouterr().out

    data = json.loads((out / "database.json").read_text())
    assert list(data["concept_dict"]) == sorted(f"<{n}>" for n in CONCEPTS)
    anya = data["concept_dict"]["<Anya>"]
    assert anya == {"name": "Anya", "image": "images/Anya/000.png", "info": CONCEPTS["Anya"][0], "category": "person"}
    assert data["concept_dict"]["<Teapot>"]["category"] == "object"  # no category.txt
    assert data["path_to_concept"]["images/Anya/001.png"] == "<Anya>"
    assert len(data["path_to_concept"]) == 10
    assert all((out / p).is_file() for p in data["path_to_concept"])

    quarantine = json.loads((out / "quarantine.json").read_text())
    reasons = {(q["concept"], q["reason"]) for q in quarantine}
    assert reasons == {
        ("<NoInfo>", "info_missing"),
        ("<Empty>", "no_image"),
        ("<Broken>", "image_unreadable"),
        ("<Broken>", "no_valid_images"),
        ("<Anya>", "image_unreadable"),
    }

    index = EmbeddingIndex.load(out)
    assert index.images == list(data["path_to_concept"]) and index.concepts == list(data["path_to_concept"].values())
    assert index.vectors.shape == (10, 16) and index.vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(index.vectors, axis=1), 1.0, atol=1e-5)


def test_rap_database_json_is_read_and_rebuilding_is_stable(tmp_path, clip):
    # A RePIC-style database: "./database/<file>" paths that only exist next to the JSON file.
    src = tmp_path / "rap"
    src.mkdir()
    make_image(1).save(src / "Anya.jpg")
    make_image(2).save(src / "Bond.jpg")
    make_image(3).save(src / "Bond_2.jpg")
    rap = {
        "concept_dict": {
            "<Anya>": {"name": "Anya", "image": "./database/Anya.jpg", "info": "A young girl.", "category": "person"},
            "<Bond>": {"name": "Bond", "image": ["./database/Bond.jpg"], "info": " A white dog. ", "category": "dog"},
            "<Ghost>": {"name": "Ghost", "image": "./database/Ghost.jpg", "info": "Not on disk.", "category": "toy"},
        },
        "path_to_concept": {
            "./database/Anya.jpg": "<Anya>",
            "./database/Bond.jpg": "<Bond>",
            "./database/Bond_2.jpg": "<Bond>",
            "./database/Ghost.jpg": "<Ghost>",
        },
    }
    (src / "database.json").write_text(json.dumps(rap))
    report = build_database(src / "database.json", tmp_path / "db1", clip, device="cpu")
    assert (report.concepts, report.images) == (2, 3)
    assert {(q["concept"], q["reason"]) for q in report.quarantined} == {
        ("<Ghost>", "image_missing"),
        ("<Ghost>", "no_valid_images"),
    }
    db = load_database(tmp_path / "db1")
    assert db.concepts["<Bond>"].images == ["images/Bond/000.jpg", "images/Bond/001.jpg"]
    assert db.concepts["<Bond>"].info == "A white dog."

    # the output is itself a valid source, and building from it gives the same database
    build_database(tmp_path / "db1", tmp_path / "db2", clip, device="cpu")
    first, second = (json.loads((tmp_path / d / "database.json").read_text()) for d in ("db1", "db2"))
    assert first == second
    assert np.allclose(
        EmbeddingIndex.load(tmp_path / "db1").vectors, EmbeddingIndex.load(tmp_path / "db2").vectors, atol=1e-6
    )


def test_duplicate_names_differing_in_case_are_quarantined(tmp_path, clip):
    src = tmp_path / "src"
    for name, seed in (("anya", 1), ("Anya", 2)):
        (src / name).mkdir(parents=True)
        (src / name / "info.txt").write_text(name)
        make_image(seed).save(src / name / "a.png")
    report = build_database(src, tmp_path / "db", clip, device="cpu")
    assert report.concepts == 1
    assert report.quarantined[0]["concept"] == "<anya>" and report.quarantined[0]["reason"].startswith("duplicate_name")


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda p: None, "database source not found"),
        (lambda p: p.mkdir(), "expected one sub-folder per concept"),
        (lambda p: (p.mkdir(), (p / "database.json").write_text('{"x": 1}')), "not a RAP/RePIC database"),
        (lambda p: (p.mkdir(), (p / "database.json").write_text("{")), "not valid JSON"),
    ],
)
def test_bad_sources_are_one_line_errors(tmp_path, clip, capsys, setup, message):
    src = tmp_path / "src"
    setup(src)
    assert main(["db", "build", str(src), "--out", str(tmp_path / "db"), "--clip", str(clip)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_refuses_to_write_into_the_source(tmp_path, clip):
    src = make_concept_folder(tmp_path / "src", images_per_concept=1)
    (src / "database.json").write_text(json.dumps({"concept_dict": {}, "path_to_concept": {}}))
    with pytest.raises(UserError, match="refusing to write"):
        build_database(src, src, clip)


def test_load_database_errors(tmp_path):
    with pytest.raises(UserError, match="database not found"):
        load_database(tmp_path)
    (tmp_path / "database.json").write_text(json.dumps({"concept_dict": {"<A>": {"name": "A", "info": "x"}}}))
    with pytest.raises(UserError, match="concept <A>: no_image"):
        load_database(tmp_path)
