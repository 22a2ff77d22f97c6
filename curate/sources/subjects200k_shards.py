"""Where a Subjects200K source's Parquet shards are: a local folder, or a pinned Hub revision downloaded once;
the folder they must stay inside; opening one with its columns checked."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow.parquet as pq

from curate.errors import UserError

COLUMNS = ("image", "collection", "quality_assessment", "description")


def shards(folder: Path) -> list[Path]:
    """``data/*.parquet`` (the HF layout), else ``*.parquet`` directly in ``folder``."""
    found = sorted((folder / "data").glob("*.parquet")) or sorted(folder.glob("*.parquet"))
    if not found:
        raise UserError(f"{folder}: no Parquet shards (looked for data/*.parquet and *.parquet)")
    return found


def download(hub: str) -> tuple[Path, str]:
    """Fetch the Parquet shards of ``ORG/NAME@REV``; return (local folder, resolved commit sha)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    repo_id, _, revision = hub.partition("@")
    try:
        local = Path(
            snapshot_download(
                repo_id, repo_type="dataset", revision=revision, allow_patterns=["*.parquet", "data/*.parquet"]
            )
        )
    except RevisionNotFoundError:
        raise UserError(f"{hub}: revision {revision!r} does not exist in dataset {repo_id}") from None
    except RepositoryNotFoundError:
        raise UserError(f"{hub}: dataset {repo_id} not found on the Hub (or not accessible with your token)") from None
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as exc:
        raise UserError(f"{hub}: download failed: {' '.join(str(exc).split())[:200]}") from None
    commit = local.name  # snapshot folders are named by commit sha
    if not re.fullmatch(r"[0-9a-f]{40}", commit):
        from huggingface_hub import HfApi

        commit = HfApi().dataset_info(repo_id, revision=revision).sha
    return local, commit


def location(spec) -> tuple[Path, list[Path], str | None]:
    if spec.hub is not None:
        folder, commit = download(spec.hub)
        return folder, shards(folder), f"{spec.hub.partition('@')[0]}@{commit}"
    if not spec.path.is_dir():
        raise UserError(f"{spec.path}: not a folder of Subjects200K Parquet shards")
    return spec.path, shards(spec.path), None


def shard_root(folder: Path) -> Path:
    """The folder shards must stay inside: the declared one, or for a Hub snapshot (whose files are links to
    ``../../blobs``) the repository's cache folder."""
    return folder.parent.parent if folder.parent.name == "snapshots" else folder


def open_shard(path: Path) -> pq.ParquetFile:
    """Open one shard and check it has the Subjects200K columns (else a one-line UserError)."""
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:
        raise UserError(f"{path}: not a readable Parquet file ({' '.join(str(exc).split())[:120]})") from None
    missing = [c for c in COLUMNS if c not in pf.schema_arrow.names]
    if missing:
        raise UserError(f"{path}: not a Subjects200K shard: missing column(s) {', '.join(missing)}")
    return pf
