"""The loopback Hub itself: the storage and HTTP semantics the hub tests rely on."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

REPO = "org/emu"


@pytest.fixture
def api(hub):
    api = HfApi()
    api.create_repo(REPO, repo_type="dataset")
    return api


def _add(api, files: dict[str, bytes], **kw):
    ops = [CommitOperationAdd(p, data) for p, data in files.items()]
    return api.create_commit(REPO, ops, commit_message="add", repo_type="dataset", **kw)


def test_commits_have_parents_and_stale_parent_is_412(api, hub):
    first = _add(api, {"a.txt": b"one"})
    second = _add(api, {"b.bin": b"\0two"}, parent_commit=first.oid)
    history = hub.commits(REPO)
    assert [c.id for c in history[:2]] == [second.oid, first.oid] and history[0].parents == [first.oid]
    assert len(second.oid) == 40 and int(second.oid, 16) >= 0
    with pytest.raises(HfHubHTTPError) as err:
        _add(api, {"c.txt": b"three"}, parent_commit=first.oid)
    assert err.value.response.status_code == 412
    assert hub.files(REPO) == {".gitattributes": hub.files(REPO)[".gitattributes"], "a.txt": b"one", "b.bin": b"\0two"}


def test_refs_tags_branches_and_conflicts(api, hub):
    c1 = _add(api, {"a.txt": b"one"})
    api.create_tag(REPO, tag="v1", repo_type="dataset")
    with pytest.raises(HfHubHTTPError) as err:
        api.create_tag(REPO, tag="v1", repo_type="dataset")
    assert err.value.response.status_code == 409
    api.create_branch(REPO, branch="dev", repo_type="dataset")
    c2 = _add(api, {"a.txt": b"two"})
    refs = api.list_repo_refs(REPO, repo_type="dataset")
    assert {t.name: t.target_commit for t in refs.tags} == {"v1": c1.oid}
    assert {b.name: b.target_commit for b in refs.branches} == {"main": c2.oid, "dev": c1.oid}
    assert api.dataset_info(REPO, revision="v1").sha == c1.oid
    api.delete_tag(REPO, tag="v1", repo_type="dataset")
    assert api.list_repo_refs(REPO, repo_type="dataset").tags == []


def test_error_codes_map_to_client_exceptions(api):
    _add(api, {"a.txt": b"one"})
    with pytest.raises(RepositoryNotFoundError):
        api.dataset_info("org/missing")
    with pytest.raises(RevisionNotFoundError):
        api.dataset_info(REPO, revision="nope")
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(REPO, "missing.txt", repo_type="dataset")
    with pytest.raises(EntryNotFoundError):
        api.list_repo_tree(REPO, path_in_repo="no-folder", repo_type="dataset").__next__()


def test_lfs_upload_is_verified_and_deduplicated(api, hub):
    data = b"\0" + bytes(range(256)) * 50
    _add(api, {"x.parquet": data})
    _add(api, {"y.parquet": data})  # same content: the batch answers without an upload action
    assert len([r for r in hub.requests("PUT") if r[2] == 200]) == 1
    # a body that does not match its oid is rejected at the verify step
    oid = hashlib.sha256(b"right").hexdigest()
    headers = {"Authorization": f"Bearer {hub.token}"}
    base = f"{hub.url}/lfs-%s/dataset/{REPO}/{oid}"
    assert httpx.put(base % "upload", content=b"wrong!", headers=headers).status_code == 200
    verify = httpx.post(base % "verify", json={"oid": oid, "size": 5}, headers=headers)
    assert verify.status_code == 400
    assert oid not in hub.repo(REPO).lfs_objects


def test_resolve_headers_ranges_and_listing(api, hub):
    info = _add(api, {"data/a.parquet": b"\0" * 100, "data/sub/b.txt": b"hello", "README.md": b"# hi\n"})
    url = f"{hub.url}/datasets/{REPO}/resolve/main/data/a.parquet"
    head = httpx.head(url)
    assert head.headers["X-Repo-Commit"] == info.oid and head.headers["Content-Length"] == "100"
    assert head.headers["X-Linked-Etag"].strip('"') == hashlib.sha256(b"\0" * 100).hexdigest()
    part = httpx.get(url, headers={"Range": "bytes=90-"})
    assert part.status_code == 206 and part.content == b"\0" * 10
    assert httpx.get(url, headers={"Range": "bytes=500-"}).status_code == 416
    missing = httpx.head(f"{hub.url}/datasets/{REPO}/resolve/main/nope.txt")
    assert missing.status_code == 404 and missing.headers["X-Repo-Commit"] == info.oid
    flat = {e.path for e in api.list_repo_tree(REPO, path_in_repo="data", repo_type="dataset")}
    deep = {e.path for e in api.list_repo_tree(REPO, path_in_repo="data", recursive=True, repo_type="dataset")}
    assert flat == {"data/a.parquet", "data/sub"} and deep == flat | {"data/sub/b.txt"}
    paths = api.get_paths_info(REPO, ["data/a.parquet", "data/sub"], repo_type="dataset")
    assert [type(p).__name__ for p in paths] == ["RepoFile", "RepoFolder"] and paths[0].lfs.size == 100


def test_auth_private_repos_and_reset(api, hub):
    assert api.whoami()["name"] == "tester"
    with pytest.raises(HfHubHTTPError):
        api.whoami(token="hf_wrong")
    with pytest.raises(HfHubHTTPError):
        HfApi(token="hf_wrong").create_repo("org/x", repo_type="dataset")
    api.create_repo("org/secret", repo_type="dataset", private=True)
    assert api.dataset_info("org/secret").private
    assert httpx.get(f"{hub.url}/api/datasets/org/secret").status_code == 404
    hub.reset()
    with pytest.raises(RepositoryNotFoundError):
        api.dataset_info(REPO)


def test_failure_injection_hits_the_nth_matching_request(api, hub):
    hub.fail_request(2, method="GET", path_contains="/refs", action="500", times=1)
    api.list_repo_refs(REPO, repo_type="dataset")
    assert httpx.get(f"{hub.url}/api/datasets/{REPO}/refs").status_code == 500
    assert httpx.get(f"{hub.url}/api/datasets/{REPO}/refs").status_code == 200
    hub.fail_request(1, path_contains="/refs", action="drop")
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"{hub.url}/api/datasets/{REPO}/refs")
