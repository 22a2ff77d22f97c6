"""repic publish / versions / pull through the real command line entry point (loopback Hub)."""

from __future__ import annotations

import json
import logging
import os
import re
import time

import datasets

from curate.cli import main
from tests.support.builds import make_build

REPO = "org/tiny"


def test_publish_versions_pull_round_trip(hub, tmp_path, capfd):
    v1 = make_build(tmp_path / "b1")
    v2 = make_build(tmp_path / "b2", version="1.1.0", rows=12, salt="-v2")
    assert main(["publish", str(v1), "--repo", REPO]) == 0
    out = capfd.readouterr().out
    commit1 = re.search(r"commit: ([0-9a-f]{40})", out).group(1)
    assert "tag:    v1.0.0" in out and hub.tags(REPO)["v1.0.0"] == commit1
    assert main(["publish", str(v2), "--repo", REPO, "-m", "second version"]) == 0
    capfd.readouterr()

    assert main(["versions", REPO]) == 0
    out = capfd.readouterr().out
    lines = [line for line in out.splitlines() if "v1." in line]
    assert len(lines) == 2 and "v1.0.0" in lines[0] and "v1.1.0" in lines[1]
    assert commit1 in lines[0] and " 8 " in lines[0] and " 12 " in lines[1]
    assert json.loads((v1 / "manifest.json").read_text())["recipe_hash"] in lines[0]

    out_dir = tmp_path / "pulled"
    assert main(["pull", f"{REPO}@v1.0.0", "--out", str(out_dir)]) == 0
    assert f"commit {commit1}" in capfd.readouterr().out
    for rel in json.loads((v1 / "manifest.json").read_text())["files"]:
        assert (out_dir / rel).read_bytes() == (v1 / rel).read_bytes()
    pulled = datasets.load_dataset("parquet", data_files=str(out_dir / "data" / "*.parquet"), split="train")
    assert len(pulled) == 8
    # the pulled folder is itself a valid dataset reference, and pulling again is fine
    assert main(["pull", f"{REPO}@{commit1}", "--out", str(out_dir)]) == 0


def test_pull_refuses_moving_and_bad_references(hub, tmp_path, capfd):
    assert main(["publish", str(make_build(tmp_path / "b")), "--repo", REPO]) == 0
    capfd.readouterr()
    assert main(["pull", f"{REPO}@main", "--out", str(tmp_path / "x")]) == 2
    assert "moving reference" in capfd.readouterr().err
    assert main(["pull", REPO]) == 2
    assert "names no version" in capfd.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("keep me")
    assert main(["pull", f"{REPO}@v1.0.0", "--out", str(tmp_path / "full")]) == 2
    assert "not empty" in capfd.readouterr().err


def test_pull_detects_a_download_that_does_not_match_its_manifest(hub, tmp_path, capfd):
    build = make_build(tmp_path / "b")
    assert main(["publish", str(build), "--repo", REPO]) == 0
    entry = hub.store.resolve(hub.repo(REPO), "v1.0.0").tree["quarantine.parquet"]
    path = hub.store.object_path(entry.sha256)
    path.write_bytes(path.read_bytes()[::-1])
    capfd.readouterr()
    assert main(["pull", f"{REPO}@v1.0.0", "--out", str(tmp_path / "p")]) == 2
    err = capfd.readouterr().err
    assert "quarantine.parquet" in err and "does not match its manifest" in err and "Traceback" not in err


def test_token_never_appears_in_output_logs_cards_or_manifests(hub, tmp_path, capfd, caplog, monkeypatch):
    token = os.environ["HF_TOKEN"]
    monkeypatch.setattr(time, "sleep", lambda s: None)
    caplog.set_level(logging.DEBUG)
    logging.getLogger("huggingface_hub").setLevel(logging.DEBUG)
    build = make_build(tmp_path / "b")
    hub.fail_request(1, method="POST", path_contains="/commit/", action="500", times=20)
    assert main(["publish", str(build), "--repo", REPO]) == 2  # a failed publish ...
    hub.clear_failures()
    assert main(["publish", str(build), "--repo", REPO]) == 0  # ... then a good one
    assert main(["versions", REPO]) == 0
    assert main(["pull", f"{REPO}@v1.0.0", "--out", str(tmp_path / "p")]) == 0
    captured = capfd.readouterr()
    assert "no tag was created" in captured.err
    assert token not in captured.out and token not in captured.err
    assert all(token not in record.getMessage() for record in caplog.records)
    for path in (tmp_path / "p").rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path
    for content in hub.files(REPO, "v1.0.0").values():
        assert token.encode() not in content
