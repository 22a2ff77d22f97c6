"""Issue 9 items 8, 12 and 14: a bad --out is one line; shortfalls are reported and fail under
quality.min_task_fraction; temporary files never survive into a complete build and block publishing."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from curate.cli import main
from curate.errors import BuildFailed, UserError
from curate.fileio import temporary_files, temporary_name
from curate.materialize import pipeline
from curate.materialize.guards import check_shortfalls, shortfalls
from curate.materialize.manifest import read_manifest, verify_build
from curate.materialize.pipeline import build
from curate.publish.upload import publish
from curate.recipe import Quality, load_recipe, recipe_hash
from tests.support.corpus import tiny_corpus, write_recipe


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return tiny_corpus(tmp_path_factory.mktemp("corpus"))


def _err_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return " ".join(err.split())


# ---------------------------------------------------------------- item 8: --out
@pytest.mark.parametrize("kind", ["file", "below a file", "proc"])
def test_build_out_that_is_a_file_or_cannot_be_created_is_one_line(tmp_path, corpus, capsys, kind):
    recipe = write_recipe(tmp_path, corpus, total=24)
    afile = tmp_path / "afile"
    afile.write_text("x")
    out = {"file": afile, "below a file": afile / "sub", "proc": "/proc/repic-cannot-exist"}[kind]
    assert main(["build", str(recipe), "--out", str(out), "--workers", "1"]) == 2
    err = _err_line(capsys)
    if kind == "proc":
        assert "error: --out: cannot create the folder /proc/repic-cannot-exist" in err
    else:
        assert f"error: --out: {afile} is a file, not a folder" in err
    assert afile.read_text() == "x"


def test_demo_out_that_is_a_file_is_one_line(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["demo", "--out", str(afile), "--size", "tiny", "--workers", "1"]) == 2
    assert f"error: --out: {afile} is a file, not a folder" in _err_line(capsys)
    assert main(["demo", "--out", "/proc/repic-demo-x", "--size", "tiny", "--workers", "1"]) == 2
    assert "error: --out: cannot create the folder /proc/repic-demo-x" in _err_line(capsys)


# ---------------------------------------------------------------- item 12: shortfalls
def test_a_total_the_corpus_cannot_supply_fails_with_exit_3(tmp_path, corpus, capsys):
    recipe = write_recipe(tmp_path, corpus, total=300)  # the tiny corpus supplies about 60
    out = tmp_path / "out"
    assert main(["build", str(recipe), "--out", str(out), "--workers", "1"]) == 3
    err = _err_line(capsys)
    assert "error: shortfall: the sources supply only" in err and "oct 0 of 150 asked (0.0%)" in err
    assert "below quality.min_task_fraction 90%" in err and "quality.allow_shortfall: true" in err
    build_dir = out / "repic-demo" / "1.0.0"
    assert not (build_dir / "manifest.json").exists()  # never a complete build
    reasons = pq.read_table(build_dir / "quarantine.parquet", columns=["reason"]).column("reason").to_pylist()
    assert "plan_shortfall" in reasons


def test_allowed_shortfalls_build_and_are_summarized(tmp_path, corpus, capsys):
    strict = write_recipe(tmp_path / "strict", corpus, total=300)
    allowed = write_recipe(tmp_path / "allowed", corpus, total=300, quality={"allow_shortfall": True})
    # the switch decides whether a build is produced, not what it holds: same hash, so the failed run resumes
    assert recipe_hash(load_recipe(strict)) == recipe_hash(load_recipe(allowed))
    out = tmp_path / "out"
    assert main(["build", str(strict), "--out", str(out), "--workers", "1"]) == 3
    capsys.readouterr()
    assert main(["build", str(allowed), "--out", str(out), "--workers", "1"]) == 0
    captured = capsys.readouterr()
    assert "resuming the unfinished build" in captured.err
    assert "shortfall: oct asked 150, built 0 (0.0%)" in captured.err
    table = " ".join(captured.out.split())
    assert "Shortfalls" in table and "│ oct │ 150 │ 0 │ 0.0% │" in table
    m = read_manifest(out / "repic-demo" / "1.0.0")
    assert m["counts"]["total"] < 300 and m["plan"]["task_requested"]["oct"] == 150


def test_the_threshold_is_the_recipes(tmp_path, corpus, capsys):
    # total 60: OCT gets 29 of 30 (96.7%): reported, above the default 90%
    ok = write_recipe(tmp_path / "ok", corpus, total=60)
    assert main(["build", str(ok), "--out", str(tmp_path / "a"), "--workers", "1"]) == 0
    captured = capsys.readouterr()
    assert "shortfall: oct asked 30, built 29 (96.7%)" in captured.err
    assert "│ oct │ 30 │ 29 │ 96.7% │" in " ".join(captured.out.split())
    strict = write_recipe(tmp_path / "strict", corpus, total=60, quality={"min_task_fraction": 1.0})
    assert main(["build", str(strict), "--out", str(tmp_path / "b"), "--workers", "1"]) == 3
    assert "oct 29 of 30 asked (96.7%), below quality.min_task_fraction 100%" in _err_line(capsys)
    # a build that is not short prints no shortfall
    full = write_recipe(tmp_path / "full", corpus, total=24)
    assert main(["build", str(full), "--out", str(tmp_path / "c"), "--workers", "1"]) == 0
    captured = capsys.readouterr()
    assert "shortfall" not in captured.err.lower() and "Shortfalls" not in captured.out


def test_check_shortfalls_counts_built_rows():
    asked = {"oct": 100, "vlt": 40, "ict_single": 0}
    assert shortfalls(asked, {"oct": 100, "vlt": 35}) == [("vlt", 40, 35)]
    with pytest.raises(BuildFailed, match="the build holds only vlt 35 of 40 asked"):
        check_shortfalls(Quality(), asked, {"oct": 100, "vlt": 35}, stage="built", see="q")
    assert check_shortfalls(Quality(), asked, {"oct": 100, "vlt": 36}, stage="built", see="q") == [("vlt", 40, 36)]
    assert check_shortfalls(Quality(allow_shortfall=True), asked, {}, stage="built", see="q") == [
        ("oct", 100, 0),
        ("vlt", 40, 0),
    ]


def test_quality_keys_are_validated(tmp_path, corpus):
    path = write_recipe(tmp_path, corpus, quality={"min_task_fraction": 1.5})
    with pytest.raises(UserError, match="quality.min_task_fraction"):
        load_recipe(path)
    path = write_recipe(tmp_path, corpus, quality={"allow_shortfall": "sometimes"})
    with pytest.raises(UserError, match="quality.allow_shortfall"):
        load_recipe(path)


# ---------------------------------------------------------------- item 14: temporary files
def test_temporary_files_of_a_killed_run_never_survive_into_a_complete_build(tmp_path, corpus, monkeypatch):
    recipe = write_recipe(tmp_path, corpus, total=24, per_shard=4)
    out = tmp_path / "out"
    build_dir = out / "repic-demo" / "1.0.0"
    real = pipeline.write_quarantine

    def killed_while_writing(parts, path):  # what SIGKILL during the final quarantine write leaves behind
        if path == build_dir / "quarantine.parquet":
            leftover = temporary_name(path)
            real(parts, leftover)
            raise KeyboardInterrupt("killed")
        return real(parts, path)

    monkeypatch.setattr(pipeline, "write_quarantine", killed_while_writing)
    with pytest.raises(KeyboardInterrupt):
        build(recipe, out, workers=1, log=lambda m: None)
    assert [p.name.startswith(".quarantine.parquet.tmp-") for p in temporary_files(build_dir)] == [True]
    monkeypatch.undo()
    done = build(recipe, out, workers=1, log=lambda m: None)
    assert temporary_files(done) == [] and verify_build(done) == []
    # a kill while the card was written (after the manifest): the rerun of the complete build cleans up too
    card_tmp = temporary_name(done / "README.md")
    card_tmp.write_text("half a card")
    assert build(recipe, out, workers=1, log=lambda m: None) == done
    assert temporary_files(done) == []


def test_publish_refuses_a_build_with_temporary_files_naming_the_file(build_dir, hub, capsys):
    leftover = temporary_name(build_dir / "quarantine.parquet")
    leftover.write_bytes(b"PAR1")
    problems = verify_build(build_dir)
    assert problems == [f"{leftover.name}: temporary file of an interrupted write (rerun `repic build` to clean it)"]
    with pytest.raises(UserError, match=leftover.name.replace(".", r"\.")):
        publish(build_dir, "org/tmpfiles")
    assert main(["publish", str(build_dir), "--repo", "org/tmpfiles"]) == 2
    assert leftover.name in _err_line(capsys)
    leftover.unlink()
    assert publish(build_dir, "org/tmpfiles").tag == "v1.0.0"
