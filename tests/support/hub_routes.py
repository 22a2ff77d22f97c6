"""The Hub's HTTP endpoints for the loopback Hub (a mixin of its request handler).

Each ``h_<name>`` answers one route of :data:`ROUTES`; the request plumbing
(``_json``, ``_read_body``, ``_send``, ``query``) and ``hub`` come from the
handler in :mod:`tests.support.hub_emulator`.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from urllib.parse import parse_qs, quote

import yaml

from tests.support.hub_store import LFS_SUFFIXES, REGULAR_LIMIT, HubError, Repo, lfs_pointer

PREFIX = {"datasets": "dataset", "spaces": "space", "models": "model"}

ROUTES: list[tuple[str, re.Pattern, str]] = [
    (m, re.compile(p), h)
    for m, p, h in [
        ("GET", r"^/api/whoami-v2$", "whoami"),
        ("POST", r"^/api/repos/create$", "create_repo"),
        ("DELETE", r"^/api/repos/delete$", "delete_repo"),
        ("POST", r"^/api/validate-yaml$", "validate_yaml"),
        ("GET", r"^/api/(?P<t>models|datasets|spaces)/(?P<id>[^/]+/[^/]+)(?:/revision/(?P<rev>[^/]+))?$", "info"),
        ("GET", r"^/api/(?P<t>models|datasets|spaces)/(?P<id>[^/]+/[^/]+)/refs$", "refs"),
        ("GET", r"^/api/(?P<t>models|datasets|spaces)/(?P<id>[^/]+/[^/]+)/commits/(?P<rev>[^/]+)$", "commits"),
        (
            "GET",
            r"^/api/(?P<t>models|datasets|spaces)/(?P<id>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?$",
            "tree",
        ),
        ("POST", r"^/api/(?P<t>models|datasets|spaces)/(?P<id>[^/]+/[^/]+)/paths-info/(?P<rev>[^/]+)$", "paths_info"),
        ("POST", r"^/api/(?P<t>models|datasets|spaces)/(?P<id>[^/]+/[^/]+)/preupload/(?P<rev>[^/]+)$", "preupload"),
        ("POST", r"^/api/(?P<t>models|datasets|spaces)/(?P<id>[^/]+/[^/]+)/commit/(?P<rev>[^/]+)$", "commit"),
        (
            "POST",
            r"^/api/(?P<t>models|datasets|spaces)/(?P<id>[^/]+/[^/]+)/(?P<kind>tag|branch)/(?P<rev>[^/]+)$",
            "create_ref",
        ),
        (
            "DELETE",
            r"^/api/(?P<t>models|datasets|spaces)/(?P<id>[^/]+/[^/]+)/(?P<kind>tag|branch)/(?P<rev>[^/]+)$",
            "delete_ref",
        ),
        ("POST", r"^/(?:(?P<t>datasets|spaces)/)?(?P<id>[^/]+/[^/]+)\.git/info/lfs/objects/batch$", "lfs_batch"),
        ("PUT", r"^/lfs-upload/(?P<t>\w+)/(?P<id>[^/]+/[^/]+)/(?P<oid>[0-9a-f]{64})$", "lfs_put"),
        ("POST", r"^/lfs-verify/(?P<t>\w+)/(?P<id>[^/]+/[^/]+)/(?P<oid>[0-9a-f]{64})$", "lfs_verify"),
        ("GET", r"^/(?:(?P<t>datasets|spaces)/)?(?P<id>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$", "resolve"),
        ("HEAD", r"^/(?:(?P<t>datasets|spaces)/)?(?P<id>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$", "resolve"),
    ]
]


class HubRoutes:
    # ---- auth and repos ------------------------------------------------------------------------
    def _authorized(self) -> bool:
        return self.headers.get("Authorization", "") == f"Bearer {self.hub.token}"

    def _require_auth(self) -> None:
        if not self._authorized():
            raise HubError(401, "Invalid credentials in Authorization header")

    def _repo(self, t: str | None, repo_id: str, write: bool = False) -> Repo:
        if write:
            self._require_auth()
        repo = self.hub.store.get_repo(PREFIX[t or "models"], repo_id)
        if repo.private and not self._authorized():
            raise HubError(404, "Repository not found", "RepoNotFound")
        return repo

    def h_whoami(self) -> None:
        self._require_auth()
        self._send(
            200,
            {
                "type": "user",
                "name": self.hub.user,
                "fullname": "Test User",
                "orgs": [],
                "auth": {"type": "access_token", "accessToken": {"role": "write"}},
            },
        )

    def h_create_repo(self) -> None:
        self._require_auth()
        body = self._json()
        repo_type = body.get("type") or "model"
        repo_id = f"{body.get('organization') or self.hub.user}/{body['name']}"
        url = self.hub.url + ("" if repo_type == "model" else f"/{repo_type}s") + f"/{repo_id}"
        private = bool(body.get("private")) or body.get("visibility") == "private"
        try:
            self.hub.store.create_repo(repo_type, repo_id, private)
        except HubError as exc:
            return self._send(exc.status, {"error": exc.message, "url": url})
        self._send(200, {"url": url, "name": repo_id, "id": repo_id})

    def h_delete_repo(self) -> None:
        self._require_auth()
        body = self._json()
        self.hub.store.delete_repo(
            body.get("type") or "model", f"{body.get('organization') or self.hub.user}/{body['name']}"
        )
        self._send(200, {})

    def h_validate_yaml(self) -> None:
        content = self._json().get("content", "")
        m = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", content, re.S)
        if m:
            try:
                meta = yaml.safe_load(m.group(1))
            except yaml.YAMLError as exc:
                raise HubError(400, f"Invalid YAML in README.md metadata: {exc}") from None
            if meta is not None and not isinstance(meta, dict):
                raise HubError(400, "README.md metadata must be a YAML mapping")
        self._send(200, {"errors": [], "warnings": []})

    # ---- reading -------------------------------------------------------------------------------
    def _entry_json(self, path: str, e) -> dict:
        out = {"type": "file", "path": path, "size": e.size, "oid": e.git_oid}
        if e.lfs:
            out["lfs"] = {"oid": e.sha256, "size": e.size, "pointerSize": len(lfs_pointer(e.sha256, e.size))}
        return out

    def h_info(self, t, id, rev=None) -> None:
        repo = self._repo(t, id)
        commit = self.hub.store.resolve(repo, rev or "main")
        readme = commit.tree.get("README.md")
        card = None
        if readme is not None:
            text = self.hub.store.object_path(readme.sha256).read_text(encoding="utf-8", errors="replace")
            m = re.match(r"^---\s*\n(.*?)\n---", text, re.S)
            card = yaml.safe_load(m.group(1)) if m else None
        self._send(
            200,
            {
                "id": id,
                "_id": commit.id[:24],
                "author": id.split("/")[0],
                "sha": commit.id,
                "private": repo.private,
                "gated": False,
                "disabled": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "createdAt": repo.created.isoformat().replace("+00:00", "Z"),
                "lastModified": commit.date.isoformat().replace("+00:00", "Z"),
                "cardData": card,
                "siblings": [{"rfilename": p, "size": e.size} for p, e in sorted(commit.tree.items())],
                **({"modelId": id} if (t or "models") == "models" else {}),
            },
        )

    def h_refs(self, t, id) -> None:
        repo = self._repo(t, id)

        def refs(d, kind):
            return [{"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": c} for n, c in sorted(d.items())]

        out = {"branches": refs(repo.branches, "heads"), "tags": refs(repo.tags, "tags"), "converts": []}
        if self.query.get("include_prs"):
            out["pullRequests"] = []
        self._send(200, out)

    def h_commits(self, t, id, rev) -> None:
        repo = self._repo(t, id)
        history = self.hub.store.history(repo, self.hub.store.resolve(repo, rev))
        self._send(
            200,
            [
                {
                    "id": c.id,
                    "title": c.title,
                    "message": c.message,
                    "authors": [{"user": self.hub.user}],
                    "date": c.date.isoformat().replace("+00:00", "Z"),
                }
                for c in history
            ],
        )

    def _listing(self, tree: dict, path: str, recursive: bool) -> list[dict]:
        prefix = f"{path}/" if path else ""
        files, dirs = [], set()
        for p, e in sorted(tree.items()):
            if not p.startswith(prefix):
                continue
            rest = p[len(prefix) :]
            parts = rest.split("/")
            for i in range(1, len(parts)):
                if recursive or i == 1:
                    dirs.add(prefix + "/".join(parts[:i]))
            if recursive or len(parts) == 1:
                files.append(self._entry_json(p, e))
        return [{"type": "directory", "path": d, "oid": "0" * 40} for d in sorted(dirs)] + files

    def h_tree(self, t, id, rev, path=None) -> None:
        repo = self._repo(t, id)
        commit = self.hub.store.resolve(repo, rev)
        path = (path or "").strip("/")
        if path and path in commit.tree:
            raise HubError(400, f"{path} is a file, not a folder")
        recursive = self.query.get("recursive", ["false"])[0].lower() in ("1", "true")
        items = self._listing(commit.tree, path, recursive)
        if path and not any(p.startswith(path + "/") for p in commit.tree):
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound")
        self._send(200, items)

    def h_paths_info(self, t, id, rev) -> None:
        repo = self._repo(t, id)
        commit = self.hub.store.resolve(repo, rev)
        form = parse_qs(self._read_body().decode())
        if not form and self.headers.get("Content-Type", "").startswith("application/json"):
            form = {"paths": self._json().get("paths", [])}
        out = []
        for path in form.get("paths", []):
            path = path.strip("/")
            if path in commit.tree:
                out.append(self._entry_json(path, commit.tree[path]))
            elif any(p.startswith(path + "/") for p in commit.tree):
                out.append({"type": "directory", "path": path, "oid": "0" * 40})
        self._send(200, out)

    def h_resolve(self, t, id, rev, path) -> None:
        repo = self._repo(t, id)
        commit = self.hub.store.resolve(repo, rev)
        entry = commit.tree.get(path)
        if entry is None:
            exc = HubError(404, f"Entry not found: {path}", "EntryNotFound")
            exc.headers = {"X-Repo-Commit": commit.id}
            raise exc
        etag = entry.sha256 if entry.lfs else entry.git_oid
        headers = {
            "X-Repo-Commit": commit.id,
            "ETag": f'"{etag}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        if entry.lfs:
            headers.update({"X-Linked-Etag": f'"{entry.sha256}"', "X-Linked-Size": entry.size})
        data = self.hub.store.object_path(entry.sha256).read_bytes()
        status, rng = 200, self.headers.get("Range")
        if rng:
            m = re.match(r"bytes=(\d*)-(\d*)$", rng.strip())
            start = int(m.group(1)) if m and m.group(1) else 0
            end = int(m.group(2)) if m and m.group(2) else len(data) - 1
            if not m or start >= len(data):
                return self._send(416, body=b"", headers={**headers, "Content-Range": f"bytes */{len(data)}"})
            end = min(end, len(data) - 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            data, status = data[start : end + 1], 206
        headers["Content-Length"] = len(data)
        self._send(status, body=data, headers=headers)

    # ---- writing -------------------------------------------------------------------------------
    def h_preupload(self, t, id, rev) -> None:
        repo = self._repo(t, id, write=True)
        tree = self.hub.store.resolve(repo, rev).tree
        out = []
        for f in self._json().get("files", []):
            sample = base64.b64decode(f.get("sample") or "")
            path, size = f["path"], int(f["size"])
            lfs = path.lower().endswith(LFS_SUFFIXES) or b"\0" in sample or size > REGULAR_LIMIT
            existing = tree.get(path)
            oid = None if existing is None else (existing.sha256 if existing.lfs else existing.git_oid)
            out.append({"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid})
        self._send(200, {"files": out})

    def h_lfs_batch(self, t, id) -> None:
        repo = self._repo(t, id, write=True)
        body = self._json()
        if body.get("operation") != "upload":
            raise HubError(400, "only uploads are supported")
        base = f"{self.hub.url}/lfs-%s/{repo.repo_type}/{quote(id)}/"
        objects = []
        for obj in body.get("objects", []):
            item = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in repo.lfs_objects:
                item["actions"] = {
                    "upload": {"href": base % "upload" + obj["oid"]},
                    "verify": {"href": base % "verify" + obj["oid"]},
                }
            objects.append(item)
        self._send(
            200, {"transfer": "basic", "objects": objects}, headers={"Content-Type": "application/vnd.git-lfs+json"}
        )

    def h_lfs_put(self, t, id, oid) -> None:
        self.hub.store.get_repo(t, id)
        tmp = self.hub.store.root / "incoming" / f"{oid}.{threading.get_ident()}.part"
        tmp.write_bytes(self._read_body())
        tmp.replace(self.hub.store.root / "incoming" / f"{oid}.{t}.{id.replace('/', '--')}")
        self._send(200, body=b"", headers={"ETag": f'"{oid}"'})

    def h_lfs_verify(self, t, id, oid) -> None:
        self._require_auth()
        repo = self.hub.store.get_repo(t, id)
        body = self._json()
        tmp = self.hub.store.root / "incoming" / f"{oid}.{t}.{id.replace('/', '--')}"
        if oid not in repo.lfs_objects:
            self.hub.store.accept_upload(repo, tmp, body.get("oid", oid), int(body.get("size", -1)))
        self._send(200, {"success": True})

    def h_commit(self, t, id, rev) -> None:
        repo = self._repo(t, id, write=True)
        if self.query.get("create_pr"):
            raise HubError(400, "pull requests are not supported here")
        lines = [json.loads(line) for line in self._read_body().splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "the commit payload must start with a header line")
        header = lines[0]["value"]
        commit = self.hub.store.commit(
            repo,
            rev,
            header.get("parentCommit"),
            lines[1:],
            header.get("summary") or "",
            header.get("description") or "",
        )
        prefix = "" if repo.repo_type == "model" else f"/{repo.repo_type}s"
        self._send(
            200,
            {
                "success": True,
                "commitOid": commit.id,
                "pullRequestUrl": None,
                "commitUrl": f"{self.hub.url}{prefix}/{id}/commit/{commit.id}",
            },
        )

    def h_create_ref(self, t, id, kind, rev) -> None:
        repo = self._repo(t, id, write=True)
        body = self._json()
        if kind == "tag":  # the revision is in the URL, the tag name in the body
            self.hub.store.create_ref(repo, "tag", body["tag"], rev)
        else:
            self.hub.store.create_ref(repo, "branch", rev, body.get("startingPoint") or "main")
        self._send(200, {})

    def h_delete_ref(self, t, id, kind, rev) -> None:
        repo = self._repo(t, id, write=True)
        self.hub.store.delete_ref(repo, kind, rev)
        self._send(200, {})
