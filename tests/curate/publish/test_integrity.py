"""Publishing keeps its promises when the manifest is edited, the tag's answer is lost or a batched publish fails."""

from __future__ import annotations

import hashlib
import json
import re
import time

import pytest
from huggingface_hub import HfApi

from curate.cli import main
from curate.errors import UserError
from curate.publish.pull import pull
from curate.publish.upload import publish
from tests.support.builds import make_build

REPO = "org/tiny"


def _edit_manifest(build, edit) -> None:
    path = build / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True))


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda m: m["counts"].update(total=999999), "counts.total is 999999 but the shards hold 8 rows"),
        (lambda m: m["counts"]["by_task"].update(oct=3, vlt=1), "counts.by_task"),
        (lambda m: m["counts"]["by_task_source"]["vlt"].update(objects365=1, coco=1), "counts.by_task_source"),
        (lambda m: m["counts"].update(oct_answers={"yes": 2, "no": 0}), "counts.oct_answers"),
        (lambda m: m["files"]["data/train-00000-of-00001.parquet"].update(rows=80), "says 80 rows, the file has 8"),
        (lambda m: m["quarantine"].update(total=0, by_reason={}), "quarantine"),
    ],
)
def test_a_manifest_whose_counts_disagree_with_the_shards_is_refused(hub, build_dir, edit, expected):
    _edit_manifest(build_dir, edit)
    with pytest.raises(UserError, match="manifest.json does not agree with the data") as err:
        publish(build_dir, REPO)
    assert expected in str(err.value) and "\n" not in str(err.value)
    assert not hub.requests("POST", "/commit/") and not hub.requests("POST", "/tag/")


def test_manifest_sha256_is_recorded_and_pull_checks_it(hub, build_dir, tmp_path):
    digest = hashlib.sha256((build_dir / "manifest.json").read_bytes()).hexdigest()
    result = publish(build_dir, REPO)
    head = hub.commits(REPO, "v1.0.0")[0]
    assert f"manifest sha256 {digest}" in head.message
    assert digest in hub.files(REPO, "v1.0.0")["README.md"].decode()
    assert pull(f"{REPO}@v1.0.0", tmp_path / "ok").commit == result.commit

    # the tag is moved to a commit whose manifest claims other counts (its files still match it)
    manifest = json.loads(hub.files(REPO, "v1.0.0")["manifest.json"])
    manifest["counts"]["total"] = 999999
    api = HfApi()
    api.upload_file(
        path_or_fileobj=json.dumps(manifest).encode(), path_in_repo="manifest.json", repo_id=REPO, repo_type="dataset"
    )
    api.delete_tag(REPO, tag="v1.0.0", repo_type="dataset")
    api.create_tag(REPO, tag="v1.0.0", repo_type="dataset")
    with pytest.raises(UserError, match=f"manifest.json has sha256 [0-9a-f]{{64}}, not the {digest} recorded"):
        pull(f"{REPO}@v1.0.0", tmp_path / "bad")


def test_a_lost_answer_to_the_tag_request_reports_the_complete_version(hub, build_dir, capfd):
    # the Hub creates the tag, then the connection drops before its answer arrives
    hub.fail_request(1, method="POST", path_contains="/tag/", action="apply-drop", times=5)
    assert main(["publish", str(build_dir), "--repo", REPO]) == 0
    out, err = capfd.readouterr()
    assert "no tag was created" not in out + err
    tag_commit = hub.tags(REPO)["v1.0.0"]
    assert f"commit: {tag_commit}" in out and "the version is complete" in out
    assert tag_commit == hub.commits(REPO)[0].id


def test_a_failure_while_tagging_says_whether_the_tag_exists(hub, build_dir):
    hub.fail_request(1, method="POST", path_contains="/tag/", action="500", times=5)
    with pytest.raises(UserError, match="no tag was created"):
        publish(build_dir, REPO)
    assert hub.tags(REPO) == {}


def _main_is_consistent(hub) -> None:
    files = hub.files(REPO, "main")
    if "manifest.json" not in files:
        return
    listed = json.loads(files["manifest.json"])["files"]
    shards = {p for p in files if p.startswith("data/")}
    assert shards == {p for p in listed if p.startswith("data/")}, "main's manifest does not list main's shards"
    for rel, entry in listed.items():
        assert hashlib.sha256(files[rel]).hexdigest() == entry["sha256"], f"main's {rel} is not the listed one"


def test_a_failing_batched_publish_never_pairs_main_manifest_with_other_shards(hub, tmp_path, monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda s: None)
    publish(make_build(tmp_path / "a", rows=24, shards=12), REPO, files_per_commit=8)
    _main_is_consistent(hub)
    v2 = make_build(tmp_path / "b", version="1.1.0", rows=24, shards=12, salt="-v2")  # same shard names
    # the first shard commit of v1.1.0 goes through, every later commit fails
    hub.fail_request(2, method="POST", path_contains="/commit/main", action="500", times=20)
    with pytest.raises(UserError, match="no tag was created"):
        publish(v2, REPO, files_per_commit=8)
    assert "v1.1.0" not in hub.tags(REPO)
    assert any(re.search(r"v1\.1\.0 \(shards, part 1/3\)", c.title) for c in hub.commits(REPO))
    _main_is_consistent(hub)

    hub.clear_failures()
    result = publish(v2, REPO, files_per_commit=8)
    assert hub.tags(REPO)["v1.1.0"] == result.commit
    _main_is_consistent(hub)
    assert json.loads(hub.files(REPO, "main")["manifest.json"])["version"] == "1.1.0"
