"""A loopback Hugging Face Hub for tests: the real HTTP API that huggingface_hub and datasets speak.

``HubEmulator(port, storage, token)`` serves on 127.0.0.1 from a threaded
``http.server``. Storage semantics live in :mod:`tests.support.hub_store`.
Tests can make the Nth matching request fail (:meth:`HubEmulator.fail_request`):
``drop`` reads part of the body and closes the socket (a connection lost
mid-upload), ``500``/``409`` answer that status, ``race`` lets another writer
commit to the branch first (so a commit with a ``parentCommit`` gets a real 412),
``apply-drop`` carries the request out and then closes the socket instead of
answering (the change is made, the client never hears so).
"""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from tests.support.hub_routes import PREFIX, ROUTES, HubRoutes
from tests.support.hub_store import HubError, HubStore, Repo


@dataclass
class FailureRule:
    n: int
    method: str | None
    path_contains: str | None
    action: str
    times: int
    seen: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path_contains is None or self.path_contains in path
        )


class HubEmulator:
    def __init__(self, port: int, storage: Path, token: str, user: str = "tester"):
        self.port, self.token, self.user = port, token, user
        self.url = f"http://127.0.0.1:{port}"
        self.store = HubStore(Path(storage))
        self.rules: list[FailureRule] = []
        self.log: list[tuple[str, str, int]] = []  # (method, path, status) of every answered request
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        handler = type("Handler", (_Handler,), {"hub": self})
        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="hub-emulator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def reset(self) -> None:
        """Wipe every repo and object, clear failure rules and the request log."""
        with self._lock:
            self.rules.clear()
            self.log.clear()
        self.store.reset()

    # ---- failure injection and introspection ---------------------------------------------------
    def fail_request(
        self,
        n: int = 1,
        method: str | None = None,
        path_contains: str | None = None,
        action: str = "drop",
        times: int = 1,
    ) -> None:
        """Fail the Nth request matching method/path (and the next ``times - 1`` matching ones)."""
        if action not in ("drop", "500", "409", "race", "apply-drop"):
            raise ValueError(f"unknown action {action!r}")
        with self._lock:
            self.rules.append(FailureRule(n, method, path_contains, action, times))

    def clear_failures(self) -> None:
        with self._lock:
            self.rules.clear()

    def _failure_for(self, method: str, path: str) -> str | None:
        with self._lock:
            for rule in self.rules:
                if rule.times > 0 and rule.matches(method, path):
                    rule.seen += 1
                    if rule.seen >= rule.n:
                        rule.times -= 1
                        return rule.action
        return None

    def requests(self, method: str | None = None, path_contains: str = "") -> list[tuple[str, str, int]]:
        with self._lock:
            return [r for r in self.log if (method is None or r[0] == method) and path_contains in r[1]]

    def repo(self, repo_id: str, repo_type: str = "dataset") -> Repo:
        return self.store.get_repo(repo_type, repo_id)

    def tags(self, repo_id: str, repo_type: str = "dataset") -> dict[str, str]:
        return dict(self.repo(repo_id, repo_type).tags)

    def files(self, repo_id: str, revision: str = "main", repo_type: str = "dataset") -> dict[str, bytes]:
        repo = self.repo(repo_id, repo_type)
        tree = self.store.resolve(repo, revision).tree
        return {p: self.store.object_path(e.sha256).read_bytes() for p, e in tree.items()}

    def commits(self, repo_id: str, revision: str = "main", repo_type: str = "dataset") -> list:
        repo = self.repo(repo_id, repo_type)
        return self.store.history(repo, self.store.resolve(repo, revision))


class _Handler(HubRoutes, BaseHTTPRequestHandler):
    hub: HubEmulator
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # quiet
        pass

    # ---- plumbing ------------------------------------------------------------------------------
    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        raw_path = split.path
        self.query = parse_qs(split.query)
        self._body: bytes | None = None
        failure = self.hub._failure_for(self.command, raw_path)
        self._silent = failure == "apply-drop"
        try:
            if failure == "drop":
                return self._drop()
            if failure in ("500", "409"):
                self._read_body()
                raise HubError(
                    int(failure),
                    "injected failure"
                    if failure == "500"
                    else "An operation is already in progress: another conflicting operation is in progress",
                )
            for method, pattern, name in ROUTES:
                m = pattern.match(raw_path)
                if m and method == self.command:
                    args = {k: unquote(v) if v is not None else None for k, v in m.groupdict().items()}
                    if failure == "race":
                        self._race(args)
                    return getattr(self, "h_" + name)(**args)
            raise HubError(404, f"no route for {self.command} {raw_path}")
        except HubError as exc:
            self._read_body()
            headers = {"X-Error-Code": exc.code} if exc.code else {}
            headers.update(getattr(exc, "headers", {}))
            self._send(exc.status, {"error": exc.message}, headers=headers)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _dispatch

    def _drop(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length and self._body is None:  # not read yet: lose the connection halfway through the body
            self.rfile.read(max(1, length // 2))
        self.hub.log.append((self.command, self.path, 0))
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _race(self, args: dict) -> None:
        repo = self.hub.store.get_repo(PREFIX[args.get("t") or "models"], args["id"])
        self.hub.store.add_commit_elsewhere(repo, args.get("rev") or "main")

    def _read_body(self) -> bytes:
        if self._body is None:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                parts = []
                while (size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)) > 0:
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                self._body = b"".join(parts)
            else:
                self._body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        return self._body

    def _json(self) -> dict:
        body = self._read_body()
        return json.loads(body) if body else {}

    def _send(self, status: int, payload=None, headers: dict | None = None, body: bytes | None = None) -> None:
        if getattr(self, "_silent", False):  # apply-drop: the request was carried out, the answer is lost
            return self._drop()
        if body is None:
            body = b"" if payload is None else json.dumps(payload).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.hub.log.append((self.command, self.path, status))
