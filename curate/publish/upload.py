"""``repic publish``: a verified build -> one tagged, immutable version on the Hub.

All files of the build go up with the card, recipe and manifest; the tag
``v<version>`` is created only after the final commit succeeded. Large builds
are committed in bounded batches (``files_per_commit``): shard-only commits
first (the first one also removes the previous version's ``manifest.json``
from ``main``, so ``main`` never pairs a manifest with shards it does not
list), then the card, recipe and manifest in the final commit, which alone
gets the tag. A failed upload or commit leaves no tag, and a rerun sends only
what the Hub does not have yet (LFS objects are deduplicated by sha256,
unchanged files are skipped by the preupload step). When the answer to the tag
request is lost, the tag is looked up before anything is reported.

Before anything is sent, the build must match its manifest (every file's
sha256) and the manifest's counts must agree with the data (rows per shard,
per task, per task and source, OCT answers, quarantine reasons). The
manifest's own sha256 goes into the final commit's message and the card, where
``repic pull`` checks it. The build's ``output.examples_per_shard`` decides
shard sizes; a shard above ``max_shard_bytes`` is refused with a hint.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from curate import progress
from curate.errors import UserError
from curate.fileio import sha256_file
from curate.materialize.lock import refuse_if_in_use
from curate.materialize.manifest import count_problems
from curate.publish.refs import MANIFEST, REPO_ID_RE, hub_error, load_build, read_manifest
from curate.report.card import CHART, PREVIEW, render_card

DEFAULT_MAX_SHARD_BYTES = 500 * 1024 * 1024
DEFAULT_FILES_PER_COMMIT = 100
STALE_PARENT_RETRIES = 3  # tries of the commit when the repo changed under us (412) or is busy (409)


@dataclass(frozen=True)
class PublishResult:
    repo_id: str
    tag: str
    commit: str
    already_published: bool  # the tag existed with byte-identical content
    note: str | None = None  # something the user should know (e.g. the tag's answer was lost but the tag is there)


def file_digests(manifest: dict) -> dict[str, str]:
    return {rel: meta.get("sha256") for rel, meta in (manifest.get("files") or {}).items()}


def scrub(text: str) -> str:
    """Remove the Hub token from any text meant for the user."""
    from huggingface_hub import get_token

    token = get_token()
    return text.replace(token, "***") if token else text


def _is_status(exc: Exception, status: int) -> bool:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None) == status


def _check_shards(manifest: dict, max_shard_bytes: int) -> None:
    for rel, meta in sorted((manifest.get("files") or {}).items()):
        if rel.startswith("data/") and int(meta.get("size", 0)) > max_shard_bytes:
            raise UserError(
                f"{rel} is {int(meta['size']) / 2**20:.0f} MiB, above the {max_shard_bytes / 2**20:.0f} MiB shard limit "
                "for the Hub: lower output.examples_per_shard in the recipe and rebuild (or raise --max-shard-mb)"
            )


def _check_counts(build_dir: Path, manifest: dict) -> None:
    problems = count_problems(build_dir, manifest)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise UserError(
            f"{build_dir}: manifest.json does not agree with the data: {problems[0]}{more}; "
            "the manifest was edited or damaged: rebuild"
        )


def _tagged_manifest(repo_id: str, commit: str) -> dict | None:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        path = hf_hub_download(repo_id, MANIFEST, repo_type="dataset", revision=commit)
    except EntryNotFoundError:
        return None
    return read_manifest(Path(path).parent)


def _existing_tag(api, repo_id: str, tag: str, manifest: dict) -> PublishResult | None:
    """The identical existing version, None when the tag is free; UserError when it holds other content."""
    refs = api.list_repo_refs(repo_id, repo_type="dataset")
    commit = next((t.target_commit for t in refs.tags if t.name == tag), None)
    if commit is None:
        return None
    theirs = _tagged_manifest(repo_id, commit)
    if theirs is not None and file_digests(theirs) == file_digests(manifest):
        return PublishResult(repo_id, tag, commit, True)
    raise UserError(
        f"{repo_id}@{tag} already exists (commit {commit}) with different content; published versions are immutable: "
        "bump `version` in the recipe and rebuild"
    )


def _operations(build_dir: Path, manifest: dict, readme: str, remote_files: set[str]) -> tuple[list, list, list]:
    """(shard additions, final additions, deletions): shards first; card, recipe, manifest in the last commit."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    listed = sorted(manifest.get("files") or {})
    shards = [CommitOperationAdd(rel, str(build_dir / rel)) for rel in listed if rel.startswith("data/")]
    final = [CommitOperationAdd(rel, str(build_dir / rel)) for rel in listed if not rel.startswith("data/")]
    for extra in (PREVIEW, CHART):
        if (build_dir / extra).is_file():
            final.append(CommitOperationAdd(extra, str(build_dir / extra)))
    final += [
        CommitOperationAdd("README.md", readme.encode("utf-8")),
        CommitOperationAdd(MANIFEST, str(build_dir / MANIFEST)),
    ]
    keep = set(listed) | {PREVIEW, CHART}
    stale = sorted(p for p in remote_files if (p.startswith("data/") or p in (PREVIEW, CHART)) and p not in keep)
    return shards, final, [CommitOperationDelete(p) for p in stale]


def _upload(api, repo_id: str, ops: list, advance) -> None:
    """Upload the LFS contents of ``ops`` a few files at a time (the progress bar counts files)."""
    for i in range(0, len(ops), 4):
        api.preupload_lfs_files(repo_id, ops[i : i + 4], repo_type="dataset")
        advance(len(ops[i : i + 4]))


def _attempt(
    api, build_dir: Path, repo_id: str, tag: str, manifest: dict, message: str, files_per_commit: int, digest: str
) -> str:
    """One pass: read the head, render the card, upload, commit in batches with parentCommit; the last commit id."""
    from huggingface_hub import CommitOperationDelete, hf_hub_download

    head = api.dataset_info(repo_id, revision="main")
    remote = {s.rfilename for s in head.siblings or []}
    existing = None
    if "README.md" in remote:
        existing = Path(hf_hub_download(repo_id, "README.md", repo_type="dataset", revision=head.sha)).read_text(
            "utf-8"
        )
    readme = render_card(build_dir, repo_id=repo_id, tag=tag, existing_readme=existing)
    shards, final, deletions = _operations(build_dir, manifest, readme, remote)
    batches = [shards[i : i + files_per_commit] for i in range(0, len(shards), files_per_commit)]
    room = files_per_commit - len(final)
    if batches and len(batches[-1]) <= room:
        final = batches.pop() + final
    if batches and MANIFEST in remote:  # main must not pair the previous manifest with these shards
        batches[0].append(CommitOperationDelete(MANIFEST))
    added = [[op for op in batch if not isinstance(op, CommitOperationDelete)] for batch in batches]
    with progress.bar(f"Uploading {repo_id}", total=sum(map(len, added)) + len(final)) as advance:
        parent = head.sha
        for n, (batch, adds) in enumerate(zip(batches, added), 1):
            _upload(api, repo_id, adds, advance)
            info = api.create_commit(
                repo_id,
                batch,
                commit_message=f"{message} (shards, part {n}/{len(batches) + 1})",
                repo_type="dataset",
                parent_commit=parent,
            )
            parent = info.oid
        _upload(api, repo_id, final, advance)
        info = api.create_commit(
            repo_id,
            final + deletions,
            commit_message=message,
            repo_type="dataset",
            commit_description=f"recipe hash {manifest.get('recipe_hash')}\nmanifest sha256 {digest}",
            parent_commit=parent,
        )
    return info.oid


def publish(
    build_dir: Path,
    repo_id: str,
    *,
    private: bool = False,
    message: str | None = None,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
    files_per_commit: int = DEFAULT_FILES_PER_COMMIT,
) -> PublishResult:
    """Publish a complete, unmodified build as ``repo_id@v<version>``; see the module docstring."""
    from huggingface_hub import HfApi, get_token
    from huggingface_hub.errors import HfHubHTTPError

    build_dir = Path(build_dir)
    if not REPO_ID_RE.match(repo_id or ""):
        raise UserError(f"bad repo id {repo_id!r}: expected ORG/NAME")
    if files_per_commit < 8:
        raise UserError("--files-per-commit must be at least 8")
    refuse_if_in_use(build_dir)  # a build is writing it: "build folder X is in use by process N"
    manifest = load_build(build_dir, verify=True)  # refuses modified builds and leftover temporary files
    digest = sha256_file(build_dir / MANIFEST)
    _check_counts(build_dir, manifest)
    _check_shards(manifest, max_shard_bytes)
    if not get_token():
        raise UserError("no Hugging Face token: set HF_TOKEN or run `hf auth login`")
    tag = f"v{manifest['version']}"
    message = message or f"Publish {manifest.get('name')} {tag}"
    rerun = f"rerun `repic publish {build_dir} --repo {repo_id}`"
    api = HfApi()
    stage = "creating the repo"
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        stage = "checking existing tags"
        done = _existing_tag(api, repo_id, tag, manifest)
        if done is not None:
            return done
        for attempt in range(1, STALE_PARENT_RETRIES + 1):
            stage = "uploading and committing"
            try:
                commit = _attempt(api, build_dir, repo_id, tag, manifest, message, files_per_commit, digest)
                break
            except HfHubHTTPError as exc:
                if not (_is_status(exc, 412) or _is_status(exc, 409)) or attempt == STALE_PARENT_RETRIES:
                    raise
                stage = "checking existing tags"  # someone else committed (412) or is committing (409): look again
                time.sleep(attempt)
                done = _existing_tag(api, repo_id, tag, manifest)
                if done is not None:
                    return done
        stage = f"creating tag {tag}"
        try:
            api.create_tag(repo_id, tag=tag, revision=commit, repo_type="dataset", tag_message=message)
        except HfHubHTTPError as exc:
            if not _is_status(exc, 409):
                raise
            done = _existing_tag(api, repo_id, tag, manifest)  # created concurrently: identical or refused
            if done is not None:
                return done
            raise
    except UserError:
        raise
    except Exception as exc:
        tagged = "no tag was created"
        if stage == f"creating tag {tag}":  # the Hub may have made the tag and lost only its answer: look
            try:
                done = _existing_tag(api, repo_id, tag, manifest)
            except UserError:
                raise
            except Exception:
                tagged = f"it could not be checked whether tag {tag} was created"
            else:
                if done is not None:
                    note = f"the Hub's answer to creating the tag was lost, but {tag} is there: the version is complete"
                    return PublishResult(repo_id, tag, done.commit, False, note)
        if _is_status(exc, 412) or (_is_status(exc, 409) and stage == "uploading and committing"):
            code = getattr(exc.response, "status_code", "?")
            detail = (
                f"the repo kept changing during the upload (HTTP {code}: stale parent or concurrent commit, "
                f"{STALE_PARENT_RETRIES} tries)"
            )
        else:
            detail = str(hub_error(exc, "the Hub request failed"))
        raise UserError(
            scrub(
                f"publishing {repo_id}@{tag} failed while {stage}: {detail}; "
                f"{tagged}; {rerun} (files already uploaded are not sent again)"
            )
        ) from None
    return PublishResult(repo_id, tag, commit, False)
