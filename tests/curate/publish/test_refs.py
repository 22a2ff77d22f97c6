"""Dataset references: parsing, pinning, local builds and Hub revisions (loopback Hub)."""

from __future__ import annotations

import pytest
from huggingface_hub import HfApi

from curate.errors import UserError
from curate.publish.refs import DatasetRef, parse_dataset_ref, resolve_dataset
from curate.publish.upload import publish
from tests.support.builds import make_build

REPO = "org/tiny"
SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    "text, repo, rev",
    [
        ("org/tiny@v1.2.3", "org/tiny", "v1.2.3"),
        (f"org/tiny@{SHA}", "org/tiny", SHA),
        ("org/tiny@main", "org/tiny", "main"),
        ("org/tiny", "org/tiny", None),
        ("Org-1/ti.ny_2@dev", "Org-1/ti.ny_2", "dev"),
    ],
)
def test_parse_hub_references(text, repo, rev):
    assert parse_dataset_ref(text) == DatasetRef(repo_id=repo, revision=rev)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty dataset reference"),
        ("tiny", "no build folder at tiny"),
        ("./builds/tiny", "no build folder"),
        ("org/tiny@", "bad revision"),
        ("org/ti ny@v1", "bad dataset reference"),
        ("org/tiny@v1@v2", "bad revision"),
    ],
)
def test_parse_rejects_bad_references(text, message):
    with pytest.raises(UserError, match=message):
        parse_dataset_ref(text)


def test_local_build_reference(tmp_path, build_dir):
    ref = parse_dataset_ref(str(build_dir))
    assert ref.is_local and ref.local_path == build_dir
    resolved = resolve_dataset(str(build_dir))
    assert (resolved.repo_id, resolved.commit, resolved.pinned, resolved.local_dir) == (None, None, True, build_dir)
    assert resolved.manifest["name"] == "tiny"
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="not a build"):
        parse_dataset_ref(str(tmp_path / "empty"))


def test_local_build_that_is_incomplete_or_modified_is_refused(tmp_path):
    with pytest.raises(UserError, match="not a complete build"):
        resolve_dataset(str(make_build(tmp_path / "a", status="failed")))
    build = make_build(tmp_path / "b")
    (build / "recipe.yaml").write_text("tampered\n")
    with pytest.raises(UserError, match="does not match its manifest: recipe.yaml"):
        resolve_dataset(str(build))


def test_tag_and_commit_are_pinned_branch_is_moving(hub, build_dir):
    result = publish(build_dir, REPO)
    by_tag = resolve_dataset(f"{REPO}@v1.0.0")
    assert (by_tag.commit, by_tag.pinned, by_tag.revision) == (result.commit, True, "v1.0.0")
    assert (by_tag.local_dir / "data" / "train-00000-of-00001.parquet").is_file()
    assert by_tag.manifest["files"] == resolve_dataset(str(build_dir)).manifest["files"]

    by_commit = resolve_dataset(f"{REPO}@{result.commit}", download=False)
    assert (by_commit.commit, by_commit.pinned) == (result.commit, True)
    assert (by_commit.local_dir / "manifest.json").is_file()

    for moving in (f"{REPO}@main", REPO):
        with pytest.raises(UserError, match=f"moving reference.*{result.commit}.*--allow-unpinned"):
            resolve_dataset(moving)
    allowed = resolve_dataset(f"{REPO}@main", allow_unpinned=True, download=False)
    assert (allowed.commit, allowed.pinned) == (result.commit, False)


def test_unknown_repo_revision_and_non_build_repo(hub, build_dir):
    with pytest.raises(UserError, match="no such dataset repo"):
        resolve_dataset("org/nothing@v1.0.0")
    publish(build_dir, REPO)
    with pytest.raises(UserError, match="no tag or branch named 'v9.9.9'.*tags: v1.0.0"):
        resolve_dataset(f"{REPO}@v9.9.9")
    with pytest.raises(UserError, match="no such tag, branch or commit"):
        resolve_dataset(f"{REPO}@{'f' * 40}")
    api = HfApi()
    api.create_repo("org/plain", repo_type="dataset")
    api.create_tag("org/plain", tag="v1.0.0", repo_type="dataset")
    with pytest.raises(UserError, match="no manifest.json: not a RePIC build"):
        resolve_dataset("org/plain@v1.0.0")


def test_downloaded_files_are_verified(hub, build_dir):
    publish(build_dir, REPO)
    # corrupt the stored shard on the server side: the download no longer matches the manifest
    repo = hub.repo(REPO)
    entry = hub.store.resolve(repo, "v1.0.0").tree["data/train-00000-of-00001.parquet"]
    path = hub.store.object_path(entry.sha256)
    path.write_bytes(path.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(UserError, match="does not match its manifest"):
        resolve_dataset(f"{REPO}@v1.0.0", cache_dir=build_dir.parent / "cache")
