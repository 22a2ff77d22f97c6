"""Storage semantics of the loopback Hub: repos, commits with parents, branches, tags, LFS objects.

File contents live on disk, content-addressed by sha256; the git objects
(commits, trees) live in memory. Every mutation goes through :class:`HubStore`
under one lock, so concurrent clients see consistent heads.
"""

from __future__ import annotations

import hashlib
import itertools
import shutil
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

GITATTRIBUTES = b"*.parquet filter=lfs diff=lfs merge=lfs -text\n*.png filter=lfs diff=lfs merge=lfs -text\n"
LFS_SUFFIXES = (".parquet", ".arrow", ".png", ".jpg", ".jpeg", ".bin", ".safetensors", ".pt", ".zip", ".gz", ".tar")
REGULAR_LIMIT = 10 * 1024 * 1024


class HubError(Exception):
    """An HTTP error answer: status, X-Error-Code (or None) and message."""

    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


@dataclass(frozen=True)
class Entry:
    size: int
    sha256: str  # content address of the bytes on disk
    git_oid: str  # git blob sha1 (of the pointer file for LFS entries)
    lfs: bool


@dataclass
class Commit:
    id: str
    parents: list[str]
    tree: dict[str, Entry]
    title: str
    message: str
    date: datetime


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    created: datetime
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    lfs_objects: set[str] = field(default_factory=set)  # verified sha256 oids


class HubStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.lock = threading.RLock()
        self.repos: dict[tuple[str, str], Repo] = {}
        self._clock = itertools.count()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.repos.clear()
            shutil.rmtree(self.root, ignore_errors=True)
            (self.root / "objects").mkdir(parents=True)
            (self.root / "incoming").mkdir()

    # ---- objects -------------------------------------------------------------------------------
    def object_path(self, sha256: str) -> Path:
        return self.root / "objects" / sha256

    def put_bytes(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        path = self.object_path(sha)
        if not path.exists():
            tmp = self.root / "incoming" / f"{sha}.{threading.get_ident()}"
            tmp.write_bytes(data)
            tmp.replace(path)
        return sha

    def accept_upload(self, repo: Repo, tmp: Path, oid: str, size: int) -> None:
        """Move an uploaded LFS body into the store if its sha256 and size match (the verify step)."""
        if not tmp.exists():
            raise HubError(404, f"no upload for object {oid}")
        actual = hashlib.sha256()
        with open(tmp, "rb") as f:
            while block := f.read(1 << 20):
                actual.update(block)
        if tmp.stat().st_size != size or actual.hexdigest() != oid:
            tmp.unlink(missing_ok=True)
            raise HubError(400, f"uploaded object does not match oid {oid} / size {size}")
        tmp.replace(self.object_path(oid))
        with self.lock:
            repo.lfs_objects.add(oid)

    # ---- repos ---------------------------------------------------------------------------------
    def create_repo(self, repo_type: str, repo_id: str, private: bool) -> Repo:
        with self.lock:
            if (repo_type, repo_id) in self.repos:
                raise HubError(409, "You already created this repo")
            repo = Repo(repo_type, repo_id, private, self._now())
            self.repos[(repo_type, repo_id)] = repo
            sha = self.put_bytes(GITATTRIBUTES)
            tree = {".gitattributes": Entry(len(GITATTRIBUTES), sha, git_blob_sha1(GITATTRIBUTES), False)}
            first = self._new_commit(repo, [], tree, "initial commit", "")
            repo.branches["main"] = first.id
            return repo

    def delete_repo(self, repo_type: str, repo_id: str) -> None:
        with self.lock:
            if self.repos.pop((repo_type, repo_id), None) is None:
                raise HubError(404, "Repository not found", "RepoNotFound")

    def get_repo(self, repo_type: str, repo_id: str) -> Repo:
        repo = self.repos.get((repo_type, repo_id))
        if repo is None:
            raise HubError(404, "Repository not found", "RepoNotFound")
        return repo

    def resolve(self, repo: Repo, revision: str) -> Commit:
        """A branch, a tag, or a full/abbreviated commit id."""
        with self.lock:
            rev = revision[len("refs/heads/") :] if revision.startswith("refs/heads/") else revision
            rev = rev[len("refs/tags/") :] if rev.startswith("refs/tags/") else rev
            sha = repo.branches.get(rev) or repo.tags.get(rev)
            if sha is None and len(rev) >= 7 and all(c in "0123456789abcdef" for c in rev):
                matches = [c for c in repo.commits if c.startswith(rev)]
                sha = matches[0] if len(matches) == 1 else None
            if sha is None:
                raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
            return repo.commits[sha]

    # ---- commits -------------------------------------------------------------------------------
    def _now(self) -> datetime:
        # strictly increasing timestamps, so "last commit first" orderings are stable
        return datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=next(self._clock))

    def _new_commit(self, repo: Repo, parents: list[str], tree: dict[str, Entry], title: str, message: str) -> Commit:
        date = self._now()
        h = hashlib.sha1()
        h.update(f"{repo.repo_id}\n{parents}\n{title}\n{message}\n{date.isoformat()}\n".encode())
        for path in sorted(tree):
            h.update(f"{path}\0{tree[path].git_oid}\n".encode())
        commit = Commit(h.hexdigest(), parents, tree, title, message, date)
        repo.commits[commit.id] = commit
        return commit

    def commit(self, repo: Repo, branch: str, parent: str | None, ops: list[dict], title: str, message: str) -> Commit:
        """Apply ndjson commit operations on top of ``branch``; 412 if ``parent`` is not its head."""
        with self.lock:
            if branch not in repo.branches:
                if branch in repo.tags or branch in repo.commits:
                    raise HubError(400, f"Cannot commit to {branch}: not a branch")
                raise HubError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
            head = repo.commits[repo.branches[branch]]
            if parent is not None and not head.id.startswith(parent):
                raise HubError(412, "A commit has happened since. Please refresh and try again.")
            tree = dict(head.tree)
            for op in ops:
                self._apply(repo, tree, op)
            new = self._new_commit(repo, [head.id], tree, title, message)
            repo.branches[branch] = new.id
            return new

    def _apply(self, repo: Repo, tree: dict[str, Entry], op: dict) -> None:
        key, value = op["key"], op["value"]
        path = value["path"].strip("/")
        if key == "file":
            import base64

            data = base64.b64decode(value["content"])
            tree[path] = Entry(len(data), self.put_bytes(data), git_blob_sha1(data), False)
        elif key == "lfsFile":
            oid, size = value["oid"], int(value["size"])
            if oid not in repo.lfs_objects:
                raise HubError(422, f"LFS object {oid} for {path} was never uploaded")
            tree[path] = Entry(size, oid, git_blob_sha1(lfs_pointer(oid, size)), True)
        elif key == "deletedFile":
            if tree.pop(path, None) is None:
                raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
        elif key == "deletedFolder":
            doomed = [p for p in tree if p.startswith(path + "/")]
            if not doomed:
                raise HubError(404, f"A folder with this name doesn't exist: {path}", "EntryNotFound")
            for p in doomed:
                del tree[p]
        else:
            raise HubError(400, f"unsupported commit operation {key!r}")

    def add_commit_elsewhere(self, repo: Repo, branch: str = "main", path: str = "CONCURRENT.txt") -> Commit:
        """Another writer commits to ``branch`` (used to provoke a real stale-parent 412)."""
        with self.lock:
            data = f"concurrent write {next(self._clock)}\n".encode()
            head = repo.commits[repo.branches[branch]]
            tree = dict(head.tree)
            tree[path] = Entry(len(data), self.put_bytes(data), git_blob_sha1(data), False)
            new = self._new_commit(repo, [head.id], tree, "concurrent commit", "")
            repo.branches[branch] = new.id
            return new

    def history(self, repo: Repo, commit: Commit) -> list[Commit]:
        out = [commit]
        while out[-1].parents:
            out.append(repo.commits[out[-1].parents[0]])
        return out

    # ---- refs ----------------------------------------------------------------------------------
    def create_ref(self, repo: Repo, kind: str, name: str, target: str) -> None:
        with self.lock:
            refs = repo.tags if kind == "tag" else repo.branches
            if name in repo.tags or name in repo.branches:
                raise HubError(409, f"Reference already exists: {name}")
            refs[name] = self.resolve(repo, target).id

    def delete_ref(self, repo: Repo, kind: str, name: str) -> None:
        with self.lock:
            refs = repo.tags if kind == "tag" else repo.branches
            if refs.pop(name, None) is None:
                raise HubError(404, f"Invalid rev id: {name}", "RevisionNotFound")
