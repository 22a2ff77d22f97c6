import json

import pytest

from curate.errors import UserError
from tests.support.trainbuilds import demo_rows, write_build
from train.data import load_training_data


def test_local_build_loads_with_the_mixture_features(tiny_build):
    data = load_training_data(str(tiny_build))
    assert data.rows == 4 and len(data.dataset) == 4
    row = data.dataset[3]
    assert row["task"] == "ict_multi" and len(row["images"]) == 3 and row["images"][2].size == (70, 70)
    rec = data.source.record()
    assert rec["kind"] == "local" and rec["recipe_hash"] == "ab" * 32 and rec["version"] == "1.0.0"
    assert list(rec["files"]) == ["data/train-00000-of-00001.parquet"]


def _bad(tmp_path, mutate):
    rows = demo_rows()
    mutate(rows)
    return str(write_build(tmp_path / "b", rows))


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda rows: rows[1].update(task="ocr"), r"row 1 \(id r001\): unknown task 'ocr'"),
        (lambda rows: rows[1].update(solution="[4, 4, 40]"), r"row 1 \(id r001\): solution .* does not parse for vlt"),
        (lambda rows: rows[0].update(solution='"maybe"'), r"row 0 \(id r000\): solution .* for oct"),
        (lambda rows: rows[3].update(solution='["<al>"]'), r"row 3 \(id r003\): .*ict_multi"),
        (lambda rows: rows[2].update(solution="not json"), r"row 2 \(id r002\): solution 'not json'"),
        (lambda rows: rows[3]["images"].pop(), r"row 3 \(id r003\): 2 image\(s\) but 3 placeholder\(s\)"),
        (lambda rows: rows[1].update(template="vlt.t03+think"), r"row 1 .*reasoning template 'vlt.t03\+think'"),
    ],
)
def test_bad_rows_are_named(tmp_path, mutate, message):
    with pytest.raises(UserError, match=r"is not a RePIC mixture: " + message) as info:
        load_training_data(_bad(tmp_path, mutate))
    assert "\n" not in str(info.value)


def test_many_bad_rows_are_summarised(tmp_path):
    rows = demo_rows() + demo_rows() + demo_rows()
    for i, r in enumerate(rows):
        r.update(id=f"x{i}", task="nope")
    with pytest.raises(UserError, match=r"row 0 \(id x0\).*row 1 \(id x1\).*row 2 \(id x2\).*; and 9 more$"):
        load_training_data(str(write_build(tmp_path / "b", rows)))


def test_reasoning_rows_allowed_when_reasoning_is_on(tmp_path):
    ref = _bad(tmp_path, lambda rows: rows[1].update(template="vlt.t03+think"))
    assert load_training_data(ref, reasoning=True).rows == 4


def test_missing_column(tmp_path):
    import hashlib

    import pyarrow.parquet as pq

    folder = write_build(tmp_path / "b")
    rel = "data/train-00000-of-00001.parquet"
    shard = folder / rel
    pq.write_table(pq.read_table(shard).drop_columns(["solution"]), shard)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"][rel].update(sha256=hashlib.sha256(shard.read_bytes()).hexdigest(), size=shard.stat().st_size)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match=r"missing column\(s\) solution"):
        load_training_data(str(folder))


def test_incomplete_modified_and_foreign_folders(tmp_path):
    with pytest.raises(UserError, match="is not a complete build"):
        load_training_data(str(write_build(tmp_path / "a", status="building")))
    folder = write_build(tmp_path / "b")
    with open(folder / "data" / "train-00000-of-00001.parquet", "ab") as fh:
        fh.write(b"x")
    with pytest.raises(UserError, match="does not match its manifest"):
        load_training_data(str(folder))
    (tmp_path / "c").mkdir()
    with pytest.raises(UserError, match="not a build"):
        load_training_data(str(tmp_path / "c"))
    with pytest.raises(UserError, match="no build folder at"):
        load_training_data(str(tmp_path / "does-not-exist"))
