"""``repic publish``, ``repic versions`` and ``repic pull``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from curate.publish.upload import DEFAULT_FILES_PER_COMMIT, DEFAULT_MAX_SHARD_BYTES, publish


def publish_cmd(
    build: Path = typer.Argument(..., help="Build folder (the output of `repic build`)."),
    repo: str = typer.Option(..., "--repo", help="Dataset repo on the Hub, ORG/NAME."),
    private: bool = typer.Option(False, "--private", help="Create the repo as private (if it does not exist yet)."),
    message: str = typer.Option(None, "--message", "-m", help="Commit message."),
    max_shard_mb: int = typer.Option(
        DEFAULT_MAX_SHARD_BYTES // 2**20, "--max-shard-mb", help="Refuse data shards larger than this."
    ),
    files_per_commit: int = typer.Option(
        DEFAULT_FILES_PER_COMMIT, "--files-per-commit", help="Files per commit for large builds."
    ),
) -> None:
    """Publish BUILD as an immutable version: its files in one commit (batches for very large builds), then the tag v<version>."""
    result = publish(
        build,
        repo,
        private=private,
        message=message,
        max_shard_bytes=max_shard_mb * 2**20,
        files_per_commit=files_per_commit,
    )
    console = Console(highlight=False, soft_wrap=True)
    if result.already_published:
        console.print(f"{result.repo_id}@{result.tag} already holds this exact build; nothing to do")
    else:
        console.print(f"published {result.repo_id}@{result.tag}")
    if result.note:
        console.print(result.note)
    console.print(f"repo:   {result.repo_id}\ntag:    {result.tag}\ncommit: {result.commit}")
    console.print(f'load:   load_dataset("{result.repo_id}", revision="{result.tag}")')


def versions_cmd(repo: str = typer.Argument(..., help="Dataset repo on the Hub, ORG/NAME.")) -> None:
    """List the published versions (tags) of REPO with commits, dates, example counts and recipe hashes."""
    from curate.publish.versions import list_versions

    rows = list_versions(repo)
    console = Console(highlight=False, width=200)
    if not rows:
        console.print(f"{repo} has no published versions (no tags)")
        return
    table = Table(title=f"Versions of {repo}")
    for col in ("tag", "commit", "date", "examples", "recipe hash"):
        table.add_column(col, justify="right" if col == "examples" else "left", no_wrap=True)
    for v in rows:
        table.add_row(v.tag, v.commit, v.date, "-" if v.examples is None else str(v.examples), v.recipe_hash or "-")
    console.print(table)


def pull_cmd(
    ref: str = typer.Argument(..., help="ORG/NAME@vX.Y.Z or ORG/NAME@<40-hex commit>."),
    out: Path = typer.Option(None, "--out", "-o", help="Target folder (default ./NAME-<revision>)."),
) -> None:
    """Download exactly one published version into a local build folder, verified against its manifest."""
    from curate.publish.pull import pull

    pulled = pull(ref, out)
    console = Console(highlight=False, soft_wrap=True)
    console.print(f"pulled {pulled.repo_id}@{pulled.revision} (commit {pulled.commit}) into {pulled.out}")
    console.print(
        f"{len(pulled.manifest.get('files', {}))} files verified against manifest.json, "
        f"{pulled.manifest.get('counts', {}).get('total', '?')} examples"
    )


def register(app: typer.Typer) -> None:
    app.command("publish")(publish_cmd)
    app.command("versions")(versions_cmd)
    app.command("pull")(pull_cmd)
