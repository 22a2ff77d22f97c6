"""Personal-grounding metric on hand-made caption files with hand-computed scores."""

from __future__ import annotations

import json

import pytest

from curate.cli import main
from curate.evaluate.grounding import MISS, bare, predict, score, tokenize
from curate.evaluate.records import parse_records

# Pool: <Anya>, <Bond>, <Bluey>, Bingo (one bare name in the file).
RECORDS = [
    ["q/0.jpg", ["<Anya>"], "A photo of <Anya> in the park.</s>", "Give a caption of the image."],  # correct
    ["q/1.jpg", ["<Bond>"], "Bond, the dog, sleeps.", "p"],  # bare name + comma: correct
    [
        "q/2.jpg",
        ["<Anya>"],
        "Here is (BLUEY)!",
        "p",
    ],  # another pool concept, upper case: MISS (lowercased) / nothing (exact)
    ["q/3.jpg", ["<Bluey>"], "A dog on a sofa.", "p"],  # nothing
    ["q/4.jpg", ["<Bond>"], "", "p"],  # empty caption: nothing
    ["q/5.jpg", ["<Anya>", "<Bond>"], '"<Anya>" waves.', "p"],  # Anya correct, Bond nothing
    [
        "q/6.jpg",
        ["<Anya>", "Bingo"],
        "<Bond> and Anya's friend -Bingo-",
        "p",
        "extra field",
    ],  # Anya MISS, Bingo correct
    ["q/7.jpg", ["<Bluey>"], "<Bluey>'s toy", "p"],  # possessive is not stripped: nothing
]
# lowercased: correct 4 (0, 1, 5a, 6b), predicted 6 (+ MISS 2, 6a), targets 10
LOWER = {"precision": 400 / 6, "recall": 40.0, "f1": 50.0, "records": 8, "targets": 10}
# exact case: "BLUEY" no longer matches, so record 2 predicts nothing: predicted 5
EXACT = {"precision": 80.0, "recall": 40.0, "f1": 2 * 80 * 40 / 120, "records": 8, "targets": 10}


@pytest.fixture
def captions(tmp_path):
    p = tmp_path / "captions.json"
    p.write_text(json.dumps(RECORDS))
    return p


def test_tokenize_strips_boundary_punctuation_and_end_token():
    assert tokenize('Hi, <Anya>! (Bond) "x" -y- {z}; a:b. ok?</s>') == [
        "hi",
        "<anya>",
        "bond",
        "x",
        "y",
        "z",
        "a:b",
        "ok",
    ]
    assert tokenize("Hi <Anya>", case_sensitive=True) == ["Hi", "<Anya>"]
    assert tokenize("  ... -- </s> ") == []
    assert tokenize("") == []


def test_bare():
    assert bare("<Anya>") == "Anya"
    assert bare("Anya") == "Anya"
    assert bare("<Anya") == "<Anya"


def test_predict_branches():
    pool = ["<Anya>", "<Bond>", "<Bluey>"]
    assert predict("<Anya> and <Bond>", ["<Anya>", "<Bond>"], pool) == ["anya", "bond"]
    # ground truth present wins over a wrong concept; a missing one becomes MISS when a wrong one is present
    assert predict("anya with bluey", ["<Anya>", "<Bond>"], pool) == ["anya", MISS]
    assert predict("a dog", ["<Anya>"], pool) == [None]
    # a ground-truth concept being present is not a wrong concept for the other ground truth
    assert predict("<Anya> alone", ["<Anya>", "<Bond>"], pool) == ["anya", None]
    assert predict("<anya>", ["<Anya>"], pool, case_sensitive=True) == [None]
    assert predict("<Anya>", ["<Anya>"], pool, case_sensitive=True) == ["Anya"]


def test_scores_lowercased_by_default():
    records, bad = parse_records(RECORDS)
    assert not bad
    s = score(records)
    assert (s.correct, s.predicted, s.missed, s.targets) == (4, 6, 2, 10)
    for k, v in LOWER.items():
        assert s.summary()[k] == pytest.approx(v)


def test_scores_case_sensitive():
    records, _ = parse_records(RECORDS)
    s = score(records, case_sensitive=True)
    assert (s.correct, s.predicted, s.missed) == (4, 5, 1)
    for k, v in EXACT.items():
        assert s.summary()[k] == pytest.approx(v)


def test_nothing_predicted_gives_zero_not_an_error():
    records, _ = parse_records([["a.jpg", ["<Anya>"], "", "p"], ["b.jpg", ["<Bond>"], "a dog</s>", "p"]])
    s = score(records)
    assert (s.precision, s.recall, s.f1, s.targets) == (0.0, 0.0, 0.0, 2)


def test_cli_json_output(captions, capsys):
    assert main(["eval", "grounding", str(captions), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"precision", "recall", "f1", "records", "targets"}
    for k, v in LOWER.items():
        assert out[k] == pytest.approx(v)


def test_cli_json_case_sensitive(captions, capsys):
    assert main(["eval", "grounding", str(captions), "--case-sensitive", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["precision"] == pytest.approx(80.0)
    assert out["f1"] == pytest.approx(53.3333333)


def test_cli_table_output_one_decimal(captions, capsys):
    assert main(["eval", "grounding", str(captions)]) == 0
    out = capsys.readouterr().out
    assert "66.7" in out and "40.0" in out and "50.0" in out


def test_malformed_record_is_a_one_line_error(tmp_path, capsys):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps([RECORDS[0], ["q/x.jpg", "<Anya>", "caption"], ["q/y.jpg", ["<Anya>"], None], RECORDS[1]]))
    assert main(["eval", "grounding", str(p), "--format", "json"]) == 2
    err = capsys.readouterr().err
    assert "record 1: concepts is not a list" in err and "(and 1 more)" in err and "--skip-bad" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_skip_bad_reports_and_scores_the_rest(tmp_path, capsys):
    p = tmp_path / "bad.json"
    p.write_text(
        json.dumps(
            [
                RECORDS[0],
                ["q/x.jpg", "<Anya>", "caption"],
                ["q/y.jpg", ["<Anya>"], None],
                RECORDS[1],
                ["q/z.jpg", [], "x"],
            ]
        )
    )
    assert main(["eval", "grounding", str(p), "--format", "json", "--skip-bad"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out == {"precision": 100.0, "recall": 100.0, "f1": 100.0, "records": 2, "targets": 2}
    assert "skipped record 1: concepts is not a list" in captured.err
    assert "skipped record 2: caption is not a string" in captured.err
    assert "skipped record 4: concepts list is empty" in captured.err


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"a": 1}', "must be a JSON list"),
        ("[1, 2", "not valid JSON"),
    ],
)
def test_unreadable_files_are_user_errors(tmp_path, capsys, content, message):
    p = tmp_path / "c.json"
    p.write_text(content)
    assert main(["eval", "grounding", str(p)]) == 2
    assert message in capsys.readouterr().err


def test_missing_file(tmp_path, capsys):
    assert main(["eval", "grounding", str(tmp_path / "nope.json")]) == 2
    assert "caption file not found" in capsys.readouterr().err


def test_reproduces_the_shape_of_a_published_row():
    """The published 2-concept skip-retrieval captions of RePIC (82 records, table 2: 100 / 98.8 / 99.4) name both
    concepts everywhere except twice: "riding on <Bond>'s back" (a possessive is not a match) and a caption that
    only says "a baby" for <Baby_Q>. The same structure must give the same rounded numbers (checked by hand
    against the published file)."""
    rows = [[f"q/{i}.jpg", [f"<A{i % 8}>", f"<B{i % 8}>"], f"<A{i % 8}> and <B{i % 8}>.", "p"] for i in range(80)]
    rows.append(["q/80.jpg", ["<Anya>", "<Bond>"], "<Anya> is seen joyfully riding on <Bond>'s back.", "p"])
    rows.append(
        ["q/81.jpg", ["<Bull_dog>", "<Baby_Q>"], "A french bulldog named <Bull_dog> is sitting next to a baby.", "p"]
    )
    records, _ = parse_records(rows)
    s = score(records, case_sensitive=True)
    assert (f"{s.precision:.1f}", f"{s.recall:.1f}", f"{s.f1:.1f}") == ("100.0", "98.8", "99.4")
    assert (s.records, s.targets, s.correct) == (82, 164, 162)


@pytest.mark.slow
def test_evaluate_modules_import_without_heavy_libraries():
    """`repic eval grounding` must work without torch, transformers or ultralytics installed."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import curate.cli.evaluate, curate.evaluate.grounding, curate.evaluate.records\n"
        "import curate.evaluate.database, curate.evaluate.retrieval, curate.evaluate.caption\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'ultralytics', 'peft') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
