"""repic publish against the loopback Hub: data round trip, immutability, failure safety, stale parents."""

from __future__ import annotations

import json
import time

import datasets
import pytest
from huggingface_hub import HfApi

from curate.errors import UserError
from curate.publish.upload import publish
from tests.support.builds import make_build

REPO = "org/tiny"


def _rows(ds) -> list[dict]:
    return sorted(ds.to_list(), key=lambda r: r["id"])


def test_publish_then_load_dataset_gives_identical_rows(hub, build_dir):
    result = publish(build_dir, REPO)
    assert result.tag == "v1.0.0" and not result.already_published
    assert hub.tags(REPO) == {"v1.0.0": result.commit}
    files = hub.files(REPO, "v1.0.0")
    assert {
        "README.md",
        "manifest.json",
        "recipe.yaml",
        "quarantine.parquet",
        "preview.png",
        "composition.png",
        "data/train-00000-of-00001.parquet",
    } <= set(files)
    # one commit on top of the initial one holds everything
    assert [c.title for c in hub.commits(REPO)] == ["Publish tiny v1.0.0", "initial commit"]

    local = datasets.load_dataset("parquet", data_files=str(build_dir / "data" / "*.parquet"), split="train")
    remote = datasets.load_dataset(REPO, revision="v1.0.0", split="train")
    assert remote.features == local.features
    assert _rows(remote) == _rows(local)


def test_existing_tag_identical_is_idempotent_and_different_is_refused(hub, tmp_path):
    first = publish(make_build(tmp_path / "a"), REPO)
    commits = len(hub.commits(REPO))
    again = publish(make_build(tmp_path / "b"), REPO)  # same content rebuilt elsewhere
    assert again.already_published and again.commit == first.commit
    assert len(hub.commits(REPO)) == commits
    changed = make_build(tmp_path / "c", salt="-other")
    with pytest.raises(UserError, match="already exists .* immutable"):
        publish(changed, REPO)
    assert hub.tags(REPO) == {"v1.0.0": first.commit}


def test_refuses_incomplete_and_modified_builds(hub, tmp_path):
    with pytest.raises(UserError, match="not a complete build"):
        publish(make_build(tmp_path / "a", status="building"), REPO)
    build = make_build(tmp_path / "b")
    shard = build / "data" / "train-00000-of-00001.parquet"
    shard.write_bytes(shard.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(UserError, match="does not match its manifest"):
        publish(build, REPO)
    assert not hub.requests("POST", "/commit/")


def test_dropped_connection_leaves_no_tag_and_rerun_completes_without_reupload(hub, build_dir, monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda s: None)  # the client's retry backoff, not our code
    # every try of the first LFS upload loses its connection halfway through the body
    hub.fail_request(1, method="PUT", path_contains="/lfs-upload/", action="drop", times=20)
    with pytest.raises(UserError) as err:
        publish(build_dir, REPO)
    assert "no tag was created" in str(err.value) and f"repic publish {build_dir} --repo {REPO}" in str(err.value)
    assert hub.tags(REPO) == {}
    assert [c.title for c in hub.commits(REPO)] == ["initial commit"]
    uploaded_before = {r[1] for r in hub.requests("PUT") if r[2] == 200}

    hub.clear_failures()
    result = publish(build_dir, REPO)
    assert hub.tags(REPO) == {"v1.0.0": result.commit}
    uploaded_after = [r[1] for r in hub.requests("PUT") if r[2] == 200]
    assert len(uploaded_after) == len(set(uploaded_after)), "an LFS object was uploaded twice"
    assert uploaded_before <= set(uploaded_after)


def test_single_dropped_upload_is_retried_transparently(hub, build_dir, monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda s: None)
    hub.fail_request(1, method="PUT", path_contains="/lfs-upload/", action="drop")
    result = publish(build_dir, REPO)
    assert hub.tags(REPO) == {"v1.0.0": result.commit}


def test_stale_parent_is_retried(hub, build_dir, monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda s: None)
    # another writer commits to main just before our commit arrives: a real 412 for our parentCommit
    hub.fail_request(1, method="POST", path_contains="/commit/main", action="race")
    result = publish(build_dir, REPO)
    statuses = [r[2] for r in hub.requests("POST", "/commit/main")]
    assert statuses == [412, 200]
    history = hub.commits(REPO)
    assert history[0].id == result.commit and history[1].title == "concurrent commit"
    assert "CONCURRENT.txt" in hub.files(REPO, "v1.0.0")  # the other writer's file is kept


def test_concurrent_commit_conflict_is_retried(hub, build_dir, monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda s: None)
    hub.fail_request(1, method="POST", path_contains="/commit/main", action="409")
    result = publish(build_dir, REPO)
    assert [r[2] for r in hub.requests("POST", "/commit/main")] == [409, 200]
    assert hub.tags(REPO) == {"v1.0.0": result.commit}


def test_stale_parent_every_time_is_reported(hub, build_dir, monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda s: None)
    hub.fail_request(1, method="POST", path_contains="/commit/main", action="race", times=10)
    with pytest.raises(UserError, match="HTTP 412: stale parent.*no tag was created"):
        publish(build_dir, REPO)
    assert hub.tags(REPO) == {}


def test_batches_with_tag_on_final_commit_and_new_version_drops_stale_shards(hub, tmp_path):
    v1 = publish(make_build(tmp_path / "a", rows=24, shards=12), REPO, files_per_commit=8)
    titles = [c.title for c in hub.commits(REPO)]
    # 12 shards, at most 8 files a commit: two shard commits, then the card/recipe/manifest commit
    assert titles[:4] == [
        "Publish tiny v1.0.0",
        "Publish tiny v1.0.0 (shards, part 2/3)",
        "Publish tiny v1.0.0 (shards, part 1/3)",
        "initial commit",
    ]
    assert hub.tags(REPO)["v1.0.0"] == v1.commit == hub.commits(REPO)[0].id

    v2 = publish(make_build(tmp_path / "b", version="1.1.0", rows=8, shards=2, salt="-v2"), REPO)
    data = sorted(p for p in hub.files(REPO, "v1.1.0") if p.startswith("data/"))
    assert data == ["data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet"]
    assert len(datasets.load_dataset(REPO, revision="v1.1.0", split="train")) == 8
    assert len(datasets.load_dataset(REPO, revision="v1.0.0", split="train")) == 24
    manifest = json.loads(hub.files(REPO, v2.commit)["manifest.json"])
    assert manifest["version"] == "1.1.0"


def test_oversized_shard_is_refused_with_a_hint(hub, build_dir):
    with pytest.raises(UserError, match="examples_per_shard"):
        publish(build_dir, REPO, max_shard_bytes=100)


def test_private_repo_and_missing_token(hub, build_dir, monkeypatch):
    publish(build_dir, REPO, private=True)
    assert HfApi().dataset_info(REPO).private is True
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    with pytest.raises(UserError, match="HF_TOKEN"):
        publish(build_dir, "org/other")
