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
        assert "<image>" not in r["problem"] and len(images) >= 1
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


# The authors' trainer (grpo_multitask_multi_img_no_format.py in the official repository), restated from the
# paper's appendix and the script's behaviour: it builds the prompt from a record itself, one image placeholder
# per path, all images first, then `problem` plus its own answer hint: a fixed sentence for yes_no and iou, and
# for the ICT methods one of two sentences with probability 1/5 each (random.randint(0, 4) == 0 or 1), else none.
OFFICIAL_HINT = {
    "yes_no": "The final answer must be either 'yes' or 'no' with no additional output.",
    "iou": "For bounding box coordinates, return the final answer in JSON format.",
}
OFFICIAL_ICT_HINTS = (
    "Output the final answer including its name.",
    "Output the final answer without duplicating the given information.",
)


def official_prompt(record: dict, roll: int) -> list[dict]:
    """The user turn the authors' trainer shows for ``record``; ``roll`` is its randint(0, 4) for ICT methods."""
    paths = record["image"] if isinstance(record["image"], list) else [record["image"]]
    hint = OFFICIAL_HINT.get(record["accu_reward_method"])
    if record["accu_reward_method"] in ("yes_no_name", "yes_no_name_multi"):
        hint = OFFICIAL_ICT_HINTS[roll] if roll < len(OFFICIAL_ICT_HINTS) else None
    text = record["problem"] if hint is None else f"{record['problem']} {hint}"
    return [{"type": "image"} for _ in paths] + [{"type": "text", "text": text}]


def test_the_authors_trainer_rebuilds_the_builds_prompts_from_the_export(built, tmp_path):
    from curate.report.inspect import iter_rows

    records = {r["id"]: r for r in json.loads(export_build(built, tmp_path / "x.json").read_text())}
    seen = set()
    for row in iter_rows(built):
        (user,) = [m for m in row["prompt"] if m["role"] == "user"]
        ours = [
            {"type": "image"} if p["type"] == "image" else {"type": "text", "text": p["text"]} for p in user["content"]
        ]
        record = records[row["id"]]
        assert "<image>" not in record["problem"]
        rebuilt = {roll: official_prompt(record, roll) for roll in range(5)}
        if row["task"] in ("oct", "vlt"):
            assert all(p == ours for p in rebuilt.values()), row["id"]
        else:  # the roll the build made is named by the template id (.h0 / .h1 / none)
            roll = int(row["template"].split(".h")[1][0]) if ".h" in row["template"] else 4
            assert rebuilt[roll] == ours, row["id"]
            seen.add("hint" if roll < 2 else "no hint")
        seen.add(row["task"])
    assert {"oct", "vlt", "ict_single", "ict_multi", "hint", "no hint"} <= seen


def test_to_record_layout():
    row = {
        "id": "x",
        "task": "ict_multi",
        "names": ["<a>", "<b>"],
        "solution": '["<a>", "<b>"]',
        "template": "ict_multi.s1.q03.h1",
        "prompt": [
            {"role": "system", "content": [{"type": "text", "text": "Be exact."}]},
            {
                "role": "user",
                "content": [
                    {"type": "image", "text": None},
                    {"type": "image", "text": None},
                    {"type": "image", "text": None},
                    {"type": "text", "text": "<a>, <b>. Caption it. " + OFFICIAL_ICT_HINTS[1]},
                ],
            },
        ],
    }
    rec = to_record(row, ["i/0.jpg", "i/1.jpg", "i/2.jpg"])
    assert rec["problem"] == "<a>, <b>. Caption it."
    assert rec["system"] == "Be exact." and rec["solution"] == ["<a>", "<b>"] and rec["template"] == row["template"]
    assert rec["accu_reward_method"] == "yes_no_name_multi" and rec["image"] == ["i/0.jpg", "i/1.jpg", "i/2.jpg"]
    no_hint = {**row, "template": "ict_multi.s1.q03"}
    no_hint["prompt"] = [
        row["prompt"][0],
        {"role": "user", "content": [*row["prompt"][1]["content"][:3], {"type": "text", "text": "Caption it."}]},
    ]
    assert to_record(no_hint, ["a", "b", "c"])["problem"] == "Caption it."


def test_rows_the_authors_trainer_cannot_show_are_refused():
    base = {"id": "y", "task": "oct", "names": ["<a>"], "solution": '"yes"', "template": "oct.q02"}
    interleaved = {
        **base,
        "prompt": [
            {
                "role": "user",
                "content": [
                    {"type": "image", "text": None},
                    {"type": "text", "text": "Is <a> here? " + OFFICIAL_HINT["yes_no"]},
                    {"type": "image", "text": None},
                ],
            }
        ],
    }
    with pytest.raises(UserError, match="row y: an image follows text"):
        to_record(interleaved, ["a", "b"])
    no_hint = {
        **base,
        "prompt": [
            {"role": "user", "content": [{"type": "image", "text": None}, {"type": "text", "text": "Is <a> here?"}]}
        ],
    }
    with pytest.raises(UserError, match="row y: the prompt does not end with the answer hint of its template"):
        to_record(no_hint, ["a"])


def test_bad_input_is_a_user_error(built, tmp_path):
    with pytest.raises(UserError, match="unknown export format"):
        export_build(built, tmp_path / "x", fmt="llava")
    with pytest.raises(UserError, match="not a build"):
        export_build(tmp_path, tmp_path / "y")
