"""``repic versions``: the published versions of a dataset repo, read from each version's manifest."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from curate.errors import UserError
from curate.publish.refs import MANIFEST, REPO_ID_RE, hub_error, read_manifest


@dataclass(frozen=True)
class Version:
    tag: str
    commit: str
    date: str  # ISO date-time of the tagged commit (UTC)
    examples: int | None  # None when the tagged commit has no RePIC manifest
    recipe_hash: str | None
    version: str | None


def _sort_key(tag: str):
    m = re.match(r"^v(\d+)\.(\d+)\.(\d+)$", tag)
    return (0, tuple(int(x) for x in m.groups()), tag) if m else (1, (), tag)


def list_versions(repo_id: str) -> list[Version]:
    """Every tag of ``repo_id`` with its commit, date and manifest facts, oldest version first."""
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    if not REPO_ID_RE.match(repo_id or ""):
        raise UserError(f"bad repo id {repo_id!r}: expected ORG/NAME")
    api = HfApi()
    out = []
    try:
        refs = api.list_repo_refs(repo_id, repo_type="dataset")
        for tag in sorted(refs.tags, key=lambda t: _sort_key(t.name)):
            commits = api.list_repo_commits(repo_id, repo_type="dataset", revision=tag.target_commit)
            date = commits[0].created_at.strftime("%Y-%m-%d %H:%M:%S UTC") if commits else "?"
            try:
                path = hf_hub_download(repo_id, MANIFEST, repo_type="dataset", revision=tag.target_commit)
                manifest = read_manifest(Path(path).parent)
            except (EntryNotFoundError, UserError):
                manifest = {}
            total = (manifest.get("counts") or {}).get("total")
            out.append(
                Version(tag.name, tag.target_commit, date, total, manifest.get("recipe_hash"), manifest.get("version"))
            )
    except UserError:
        raise
    except Exception as exc:
        raise hub_error(exc, repo_id) from None
    return out
