"""``repic pull``: download exactly one published version into a local build folder, verified by its manifest.

The manifest itself is checked against the sha256 the card records; the card is
then kept without its ``configs`` section, like a build's own card (see
:func:`curate.report.card.render_card`), so ``datasets.load_dataset(folder)``
never returns another folder's cached rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from curate.errors import UserError
from curate.fileio import atomic_write_text
from curate.publish.refs import check_manifest_digest, download_build, load_build, parse_dataset_ref, resolve_dataset
from curate.report.card import local_card


@dataclass(frozen=True)
class Pulled:
    repo_id: str
    revision: str
    commit: str
    out: Path
    manifest: dict


def pull(ref_text: str, out: Path | None = None) -> Pulled:
    """Pull ``ORG/NAME@vX.Y.Z`` or ``ORG/NAME@<commit>`` into ``out`` (default ``./NAME-<revision>``)."""
    ref = parse_dataset_ref(ref_text)
    if ref.is_local:
        raise UserError(f"{ref_text} is a local build already; pull takes ORG/NAME@vX.Y.Z or ORG/NAME@<commit>")
    if ref.revision is None:
        raise UserError(f"{ref_text} names no version: pull ORG/NAME@vX.Y.Z or ORG/NAME@<commit>")
    resolved = resolve_dataset(ref, download=False, verify=False)  # refuses branches; pins the commit
    out = Path(out) if out is not None else Path(f"{ref.repo_id.split('/')[1]}-{ref.revision}")
    if out.exists() and any(out.iterdir()) and not (out / ".cache" / "huggingface").is_dir():
        raise UserError(f"{out} exists and is not empty (and not an earlier pull): choose another --out")
    what = f"{ref} (commit {resolved.commit})"
    folder = download_build(ref.repo_id, resolved.commit, what=what, local_dir=out)
    try:
        manifest = load_build(folder, verify=True, what=what)
        check_manifest_digest(folder, what)
    except UserError as exc:
        raise UserError(f"{exc}; the download in {out} is not trustworthy, delete it and pull again") from None
    card = folder / "README.md"
    if card.is_file():  # the local copy without `configs`, so load_dataset(folder) returns its own rows
        atomic_write_text(card, local_card(card.read_text(encoding="utf-8")))
    return Pulled(ref.repo_id, ref.revision, resolved.commit, folder, manifest)
