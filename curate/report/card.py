"""The dataset card: README.md with Hub YAML metadata, rendered from a build's manifest.

Metadata merge with an existing card (``existing_readme``): the user's keys are
kept, except the generated facts that must describe this version, which are
always set: ``configs`` (points at the shards) and ``size_categories``. ``tags``
are the union of the user's and the generated ones. Every other key (license,
license_name, language, task_categories, pretty_name, anything else) keeps the
user's value when the user set one. The card kept in a local build folder has
no ``configs`` (``render_card(..., local=True)``, :func:`local_card`), and the
provenance table records the sha256 of ``manifest.json`` for ``repic pull``.
"""

from __future__ import annotations

import importlib.resources
import re
from datetime import datetime, timezone
from pathlib import Path

import yaml
from PIL import Image, ImageDraw, ImageFont

from curate.errors import UserError
from curate.fileio import sha256_file
from curate.publish.refs import read_manifest

TEMPLATE_DIR = Path(importlib.resources.files("hub_cards"))  # top-level hub_cards/, shipped as package data
TEMPLATE = "dataset_card.md.j2"
CHART = "composition.png"
PREVIEW = "preview.png"
FORCED_KEYS = ("configs", "size_categories")
MERGED_LIST_KEYS = ("tags",)
TASK_ORDER = ("oct", "vlt", "ict_single", "ict_multi")
PALETTE = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
]

# Terms of each source kind, as stated by each dataset's own site or card (summaries, not legal advice).
SOURCE_TERMS = {
    "coco": "annotations: CC BY 4.0 (COCO Consortium); images: Flickr photos under their owners' Flickr terms "
    "(various Creative Commons licenses, listed per image in the COCO files)",
    "objects365": "CC BY 4.0, as stated by the dataset's site (objects365.org); check the site for the current terms",
    "celeba": "CelebA release agreement: non-commercial research and educational use only; the images (celebrities, "
    "collected from the web) may not be copied, sold or exploited for any commercial purpose",
    "subjects200k": "Apache-2.0, as shown on the Hugging Face card of Yuanshi/Subjects200K (synthetic images generated "
    "with FLUX.1; also see the card for the generator's terms)",
    "refcoco": "RefCOCO/RefCOCO+/RefCOCOg expressions: under the license of the refer repository "
    "(github.com/lichengunc/refer); images: COCO terms (Flickr photos under their owners' terms)",
}
RESTRICTIVENESS = ("celeba", "coco", "refcoco", "objects365", "subjects200k")  # most restrictive first
MOST_RESTRICTIVE = {"celeba": "CelebA's agreement: non-commercial research use only"}
HUB_CONFIG = {"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*.parquet"}]}
MANIFEST_DIGEST_RE = re.compile(r"\| manifest\.json sha256 \| `([0-9a-f]{64})` \|")  # the card's provenance row
GENERATED_TAGS = ["repic", "personalization", "image-captioning", "grpo", "multimodal", "synthetic-instructions"]


def size_category(n: int) -> str:
    for limit, label in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"),
        (100_000_000, "10M<n<100M"),
    ):
        if n < limit:
            return label
    return "100M<n<1B"


def generated_metadata(manifest: dict, *, local: bool = False) -> dict:
    """The card's Hub metadata; ``local`` (the card inside a build folder) leaves out ``configs`` (see render_card)."""
    meta = {
        # version-independent: a later version reads this card back as the repo's existing metadata
        "pretty_name": f"RePIC mixture {manifest.get('name', '')}".strip(),
        "license": "other",
        "license_name": "mixed-source-terms-noncommercial-research",
        "task_categories": ["image-text-to-text", "visual-question-answering"],
        "language": ["en"],
        "size_categories": [size_category(int(manifest.get("counts", {}).get("total", 0)))],
        "tags": list(GENERATED_TAGS),
    }
    if not local:
        meta["configs"] = [HUB_CONFIG]
    return meta


def split_readme(text: str) -> tuple[dict, str]:
    """(metadata, body) of a README.md; a clear UserError if its YAML header is broken."""
    if not text.startswith("---"):
        return {}, text
    lines = text.split("\n")
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        raise UserError("the existing README.md has an unterminated YAML header") from None
    try:
        meta = yaml.safe_load("\n".join(lines[1:end])) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"the existing README.md has invalid YAML metadata ({str(exc).splitlines()[0]})") from None
    if not isinstance(meta, dict):
        raise UserError("the existing README.md metadata is not a YAML mapping")
    return meta, "\n".join(lines[end + 1 :])


def merge_metadata(generated: dict, user: dict) -> dict:
    merged = dict(generated)
    for key, value in user.items():
        if key in FORCED_KEYS:
            continue
        if key in MERGED_LIST_KEYS and isinstance(value, list):
            merged[key] = list(dict.fromkeys([*value, *generated.get(key, [])]))
        else:
            merged[key] = value
    if merged.get("license") != "other" and "license_name" not in user:
        merged.pop("license_name", None)  # only meaningful with license: other
    return merged


def draw_composition_chart(by_task_source: dict, path: Path) -> Path:
    """Horizontal stacked bars: one bar per task, one colour per source, with a legend (Pillow only)."""
    tasks = [t for t in TASK_ORDER if t in by_task_source] + sorted(set(by_task_source) - set(TASK_ORDER))
    sources = sorted({s for per in by_task_source.values() for s in per})
    colours = {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(sources)}
    font = ImageFont.load_default()
    left, right, top, bar_h, gap = 110, 70, 40, 28, 14
    width, height = 760, top + len(tasks) * (bar_h + gap) + 14 + 22 * ((len(sources) + 3) // 4)
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    draw.text((left, 10), "examples per task, by source", fill="black", font=font)
    biggest = max([sum(by_task_source[t].values()) for t in tasks] + [1])
    scale = (width - left - right) / biggest
    y = top
    for task in tasks:
        draw.text((10, y + bar_h // 2 - 6), task, fill="black", font=font)
        x = left
        for source in sources:
            n = by_task_source[task].get(source, 0)
            w = round(n * scale)
            if w > 0:
                draw.rectangle([x, y, x + w, y + bar_h], fill=colours[source])
                x += w
        draw.text((x + 6, y + bar_h // 2 - 6), str(sum(by_task_source[task].values())), fill="black", font=font)
        y += bar_h + gap
    y += 6
    for i, source in enumerate(sources):
        lx, ly = left + (i % 4) * 150, y + (i // 4) * 22
        draw.rectangle([lx, ly, lx + 14, ly + 14], fill=colours[source])
        draw.text((lx + 20, ly + 1), source, fill="black", font=font)
    img.save(path, format="PNG", optimize=True)
    return path


def _build_date(build_dir: Path, manifest: dict) -> str:
    if manifest.get("built_at"):
        return str(manifest["built_at"])
    mtime = (build_dir / "manifest.json").stat().st_mtime
    return datetime.fromtimestamp(mtime, tz=timezone.utc).strftime("%Y-%m-%d")


def _context(build_dir: Path, manifest: dict, chart: bool) -> dict:
    counts = manifest.get("counts", {})
    by_ts = counts.get("by_task_source", {}) or {}
    tasks = [t for t in TASK_ORDER if t in by_ts] + sorted(set(by_ts) - set(TASK_ORDER))
    sources = sorted({s for per in by_ts.values() for s in per})
    specs = manifest.get("sources", {}) or {}
    kinds = sorted(
        {spec.get("kind", name) for name, spec in specs.items()},
        key=lambda k: (RESTRICTIVENESS.index(k) if k in RESTRICTIVENESS else len(RESTRICTIVENESS), k),
    )
    license_rows = [{"source": k, "terms": SOURCE_TERMS.get(k, "see the source dataset's own terms")} for k in kinds]
    restrictive = next((MOST_RESTRICTIVE[k] for k in kinds if k in MOST_RESTRICTIVE), None)
    toolkit = manifest.get("toolkit", {}) or {}
    quarantine = manifest.get("quarantine", {}) or {}
    return {
        "name": manifest.get("name", build_dir.name),
        "version": manifest.get("version", "?"),
        "title": f"RePIC mixture: {manifest.get('name', build_dir.name)}",
        "total": counts.get("total", 0),
        "tasks": tasks,
        "sources": sources,
        "composition": by_ts,
        "task_totals": {t: sum(by_ts[t].values()) for t in tasks},
        "source_totals": {s: sum(by_ts[t].get(s, 0) for t in tasks) for s in sources},
        "oct_answers": counts.get("oct_answers") or {},
        "chart": CHART if chart else None,
        "preview": PREVIEW if (build_dir / PREVIEW).is_file() else None,
        "recipe_hash": manifest.get("recipe_hash", "?"),
        "manifest_sha256": sha256_file(build_dir / "manifest.json"),
        "seed": manifest.get("seed", "?"),
        "toolkit_version": toolkit.get("version", "?"),
        "toolkit_commit": toolkit.get("git_commit") or "unknown",
        "build_date": _build_date(build_dir, manifest),
        "libraries": manifest.get("libraries", {}) or {},
        "source_rows": [
            {
                "name": name,
                "kind": spec.get("kind", "?"),
                "revision": spec.get("revision") or "local files",
                "fingerprint": spec.get("fingerprint", "?"),
                "counts": ", ".join(f"{k} {v}" for k, v in (spec.get("counts") or {}).items()) or "-",
            }
            for name, spec in sorted(specs.items())
        ],
        "quarantine_total": quarantine.get("total", 0),
        "quarantine_reasons": sorted((quarantine.get("by_reason") or {}).items(), key=lambda kv: (-kv[1], kv[0])),
        "license_rows": license_rows,
        "most_restrictive": restrictive,
    }


def recorded_manifest_sha256(card_text: str) -> str | None:
    """The manifest sha256 a card records (None for cards written before it was recorded)."""
    m = MANIFEST_DIGEST_RE.search(card_text)
    return m.group(1) if m else None


def local_card(card_text: str) -> str:
    """A published card made fit for a local build folder: the same text without ``configs`` (see render_card)."""
    meta, body = split_readme(card_text)
    if "configs" not in meta:
        return card_text
    meta.pop("configs")
    return f"---\n{yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000)}---\n{body}"


def validate_card(text: str) -> dict:
    """Parse the card as the Hub and datasets do; returns its metadata, or raises UserError."""
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCard

    try:
        card = DatasetCard(text)
        MetadataConfigs.from_dataset_card_data(card.data)
    except Exception as exc:  # a broken card is a user-fixable problem (the kept user keys)
        raise UserError(f"the dataset card metadata is not valid: {str(exc).splitlines()[0]}") from None
    return card.data.to_dict()


def render_card(
    build_dir: Path,
    *,
    repo_id: str | None = None,
    tag: str | None = None,
    existing_readme: str | None = None,
    local: bool = False,
) -> str:
    """README.md text for a build folder; writes composition.png into it.

    ``local=True`` renders the card kept inside the build folder: no ``configs``
    section, so that ``datasets.load_dataset(BUILD_DIR)`` resolves the shard
    files themselves and their paths and modification times enter its cache
    key. With ``configs``, datasets hashes only the unresolved pattern
    (``data/train-*.parquet``) and names the cache after the folder (the
    version, ``1.0.0``), so another build of the same version loaded earlier
    would be returned from the cache. The published card keeps ``configs``
    (on the Hub the cache key holds the commit).
    """
    import jinja2

    build_dir = Path(build_dir)
    manifest = read_manifest(build_dir)
    by_ts = manifest.get("counts", {}).get("by_task_source") or {}
    chart = bool(by_ts) and any(sum(v.values()) for v in by_ts.values())
    if chart:
        draw_composition_chart(by_ts, build_dir / CHART)
    user_meta = split_readme(existing_readme)[0] if existing_readme else {}
    metadata = merge_metadata(generated_metadata(manifest, local=local), user_meta)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    text = env.get_template(TEMPLATE).render(
        metadata_yaml=yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True, width=1000),
        repo_id=repo_id,
        tag=tag,
        **_context(build_dir, manifest, chart),
    )
    validate_card(text)
    return text
