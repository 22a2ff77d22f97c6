"""Dataset references: ``ORG/NAME@vX.Y.Z``, ``ORG/NAME@<commit>``, ``ORG/NAME@<branch>``, ``ORG/NAME`` or a build folder.

:func:`resolve_dataset` turns a reference into a pinned 40-hex commit (through
the Hub's refs), refuses moving references (branches, no revision) unless asked
to allow them, and gives a local build folder with its verified manifest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from curate.errors import UserError
from curate.materialize.manifest import MANIFEST, read_manifest

COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
REPO_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class DatasetRef:
    """A parsed reference: either a Hub repo (with an optional revision) or a local build folder."""

    repo_id: str | None = None
    revision: str | None = None
    local_path: Path | None = None

    @property
    def is_local(self) -> bool:
        return self.local_path is not None

    def __str__(self) -> str:
        if self.local_path is not None:
            return str(self.local_path)
        return f"{self.repo_id}@{self.revision}" if self.revision else str(self.repo_id)


@dataclass(frozen=True)
class ResolvedDataset:
    repo_id: str | None  # None for a local build
    revision: str | None  # as given: a tag, a commit or a branch (None when none was given)
    commit: str | None  # the resolved 40-hex commit (None for a local build)
    pinned: bool  # a tag, a commit or a local build; False for a branch or no revision
    local_dir: Path  # the build folder (the given path or the downloaded snapshot)
    manifest: dict


def _looks_like_path(text: str) -> bool:
    return text.startswith((".", "/", "~")) or text.count("/") != 1 or "\\" in text


def parse_dataset_ref(text: str) -> DatasetRef:
    """Parse a dataset reference; a clear :class:`UserError` when it is none of the accepted forms."""
    text = (text or "").strip()
    if not text:
        raise UserError("empty dataset reference: give ORG/NAME@vX.Y.Z, ORG/NAME@<commit> or a build folder")
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / MANIFEST).is_file():
            raise UserError(f"{text} is a folder but not a build (no {MANIFEST} in it)")
        return DatasetRef(local_path=path)
    if "@" in text:
        repo_id, _, revision = text.partition("@")
        if not revision or any(c.isspace() for c in revision) or "@" in revision:
            raise UserError(
                f"bad revision in dataset reference {text!r}: expected ORG/NAME@vX.Y.Z or ORG/NAME@<commit>"
            )
    else:
        repo_id, revision = text, None
    if not REPO_ID_RE.match(repo_id):
        if _looks_like_path(text) and "@" not in text:
            raise UserError(f"no build folder at {text} (and it is not an ORG/NAME Hub reference)")
        raise UserError(
            f"bad dataset reference {text!r}: expected ORG/NAME@vX.Y.Z, ORG/NAME@<40-hex commit> or a build folder"
        )
    return DatasetRef(repo_id=repo_id, revision=revision)


def manifest_problems(folder: Path) -> list[str]:
    """Ways the folder differs from its manifest (missing, changed or unlisted files); empty when it matches."""
    from curate.materialize.manifest import verify_build

    return verify_build(folder)


def load_build(folder: Path, *, verify: bool = True, what: str | None = None) -> dict:
    """The manifest of a complete build folder; :class:`UserError` if incomplete, failed or modified."""
    folder = Path(folder)
    what = what or str(folder)
    manifest = read_manifest(folder)
    status = manifest.get("status")
    if status != "complete":
        raise UserError(f"{what} is not a complete build (status: {status}); rerun `repic build` to finish it")
    if verify:
        problems = manifest_problems(folder)
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise UserError(f"{what} does not match its manifest: {problems[0]}{more}")
    return manifest


def check_manifest_digest(folder: Path, what: str) -> None:
    """UserError when the card downloaded with a version records another sha256 for its manifest.json.

    ``repic publish`` writes the manifest's sha256 into the card (and the commit
    message): the manifest's own counts are not covered by the file digests it lists.
    """
    from curate.fileio import sha256_file
    from curate.report.card import recorded_manifest_sha256

    card = Path(folder) / "README.md"
    recorded = recorded_manifest_sha256(card.read_text(encoding="utf-8", errors="replace")) if card.is_file() else None
    if recorded is None:
        return  # a version published before the digest was recorded, or not by repic publish
    actual = sha256_file(Path(folder) / MANIFEST)
    if actual != recorded:
        raise UserError(
            f"{what}: {MANIFEST} has sha256 {actual}, not the {recorded} recorded in its card when it was published"
        )


def hub_error(exc: Exception, what: str) -> UserError:
    """A one-line UserError for a huggingface_hub failure (never carries the token)."""
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(exc, GatedRepoError):
        return UserError(f"{what}: the repo is gated; accept its terms on the Hub first")
    if isinstance(exc, RepositoryNotFoundError):
        return UserError(
            f"{what}: no such dataset repo on {constants.ENDPOINT} (or it is private: set HF_TOKEN or run `hf auth login`)"
        )
    if isinstance(exc, RevisionNotFoundError):
        return UserError(f"{what}: no such tag, branch or commit")
    if isinstance(exc, EntryNotFoundError):
        return UserError(f"{what}: file not found in the repo")
    if isinstance(exc, HfHubHTTPError):
        status = getattr(exc.response, "status_code", "?")
        server = getattr(exc, "server_message", None) or ""
        return UserError(f"{what}: the Hub answered HTTP {status}" + (f" ({server.strip()[:200]})" if server else ""))
    detail = _first_line(exc)
    cause = exc.__cause__ or exc.__context__
    if cause is not None and cause is not exc:
        detail += f" <- {type(cause).__name__}: {_first_line(cause)}"
    return UserError(f"{what}: {detail} (Hub endpoint {constants.ENDPOINT})")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def download_build(
    repo_id: str,
    commit: str,
    *,
    what: str,
    cache_dir: Path | None = None,
    local_dir: Path | None = None,
    manifest_only: bool = False,
) -> Path:
    """Download a published build at ``commit``: its manifest, then exactly the files it lists plus the card files."""
    from huggingface_hub import hf_hub_download, snapshot_download
    from huggingface_hub.errors import EntryNotFoundError

    kw = {"repo_type": "dataset", "revision": commit, "cache_dir": cache_dir, "local_dir": local_dir}
    try:
        folder = Path(hf_hub_download(repo_id, MANIFEST, **kw)).parent
        if manifest_only:
            return folder
        files = read_manifest(folder).get("files") or {}
        patterns = sorted(files) + [MANIFEST, "README.md", "preview.png", "composition.png"]
        return Path(snapshot_download(repo_id, allow_patterns=patterns, **kw))
    except EntryNotFoundError:
        raise UserError(f"{what} has no {MANIFEST}: not a RePIC build") from None
    except UserError:
        raise
    except Exception as exc:
        raise hub_error(exc, what) from None


def _resolve_commit(api, ref: DatasetRef) -> tuple[str, bool]:
    """(commit, pinned) of a Hub reference."""
    repo, rev = ref.repo_id, ref.revision
    if rev is None:
        return api.dataset_info(repo).sha, False
    if COMMIT_RE.match(rev):
        sha = api.dataset_info(repo, revision=rev).sha
        if sha != rev:
            raise UserError(f"{ref}: the Hub resolved this commit to {sha}")
        return sha, True
    refs = api.list_repo_refs(repo, repo_type="dataset")
    for tag in refs.tags:
        if tag.name == rev:
            return tag.target_commit, True
    for branch in refs.branches:
        if branch.name == rev:
            return branch.target_commit, False
    raise UserError(
        f"{ref}: no tag or branch named {rev!r} in {repo} (tags: {', '.join(t.name for t in refs.tags) or 'none'})"
    )


def resolve_dataset(
    ref: str | DatasetRef,
    *,
    allow_unpinned: bool = False,
    download: bool = True,
    cache_dir: Path | None = None,
    verify: bool = True,
) -> ResolvedDataset:
    """Resolve a reference to a pinned commit and a local build folder with its manifest.

    A branch or a missing revision is a moving reference: refused unless
    ``allow_unpinned`` (the commit it points to now is recorded either way).
    With ``download=False`` only ``manifest.json`` is fetched and ``local_dir`` is
    the snapshot folder holding it. ``verify`` checks every file listed in the
    manifest against its sha256.
    """
    if isinstance(ref, str):
        ref = parse_dataset_ref(ref)
    if ref.is_local:
        manifest = load_build(ref.local_path, verify=verify)
        return ResolvedDataset(None, None, None, True, Path(ref.local_path), manifest)

    from huggingface_hub import HfApi

    api = HfApi()
    try:
        commit, pinned = _resolve_commit(api, ref)
    except UserError:
        raise
    except Exception as exc:
        raise hub_error(exc, str(ref)) from None
    if not pinned and not allow_unpinned:
        kind = f"branch {ref.revision!r}" if ref.revision else "no revision"
        raise UserError(
            f"{ref} is a moving reference ({kind}); pin a version: {ref.repo_id}@vX.Y.Z or "
            f"{ref.repo_id}@{commit} (its current commit), or allow it with --allow-unpinned"
        )
    local_dir = download_build(
        ref.repo_id, commit, what=f"{ref} (commit {commit})", cache_dir=cache_dir, manifest_only=not download
    )
    manifest = load_build(local_dir, verify=verify and download, what=f"{ref} (commit {commit})")
    if verify and download:
        check_manifest_digest(local_dir, f"{ref} (commit {commit})")
    return ResolvedDataset(ref.repo_id, ref.revision, commit, pinned, local_dir, manifest)
