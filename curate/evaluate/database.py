"""Personal databases in the RAP / RePIC ``database.json`` format, plus their CLIP embedding index.

``database.json``::

    {"concept_dict": {"<Anya>": {"name": "Anya", "image": "images/Anya/1.jpg", "info": "...", "category": "person"}},
     "path_to_concept": {"images/Anya/1.jpg": "<Anya>", "images/Anya/2.jpg": "<Anya>"}}

``image`` is the concept's main reference image; ``path_to_concept`` lists every reference
image. Paths written by ``repic db build`` are relative to the folder holding database.json.
Next to it, ``embeddings.npy`` (float32, one unit-length CLIP row per path_to_concept entry)
and ``index.json`` (row order, CLIP model fingerprint) make the retrieval index, and
``quarantine.json`` lists every rejected concept or image with its reason.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from curate import imageio, progress
from curate.errors import UserError
from curate.evaluate.records import read_json
from curate.fileio import atomic_write_json

DB_FILE = "database.json"
INDEX_FILE = "index.json"
VECTORS_FILE = "embeddings.npy"
QUARANTINE_FILE = "quarantine.json"
INDEX_FORMAT = "repic-db-index/1"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"}
DEFAULT_CATEGORY = "object"


@dataclass
class Concept:
    key: str  # "<name>"
    name: str
    info: str
    category: str
    images: list[str] = field(default_factory=list)  # first one is the main image


@dataclass
class Database:
    root: Path  # folder that relative image paths are resolved against
    concepts: dict[str, Concept]

    def resolve(self, image: str) -> Path:
        p = Path(image)
        return p if p.is_absolute() else self.root / p

    def to_json(self) -> dict:
        return {
            "concept_dict": {
                c.key: {"name": c.name, "image": c.images[0], "info": c.info, "category": c.category}
                for c in self.concepts.values()
            },
            "path_to_concept": {img: c.key for c in self.concepts.values() for img in c.images},
        }

    def categories(self) -> list[str]:
        return sorted({c.category for c in self.concepts.values() if c.category})


def load_database(path: Path) -> Database:
    """Open a database folder (or its database.json) written by ``repic db build``."""
    path = Path(path)
    file = path / DB_FILE if path.is_dir() else path
    concepts, problems = _parse_json_db(read_json(file, "database"), file)
    if problems:
        key, _, reason = problems[0]
        raise UserError(f"{file}: concept {key}: {reason}")
    if not concepts:
        raise UserError(f"{file}: the database has no concepts")
    return Database(file.parent, {c.key: c for c in concepts})


def _parse_json_db(data, file: Path) -> tuple[list[Concept], list[tuple[str, str | None, str]]]:
    """Concepts of a RAP/RePIC database.json (paths as written) and (key, image, reason) problems."""
    if not isinstance(data, dict) or not isinstance(data.get("concept_dict"), dict):
        raise UserError(f'{file}: not a RAP/RePIC database (expected an object with a "concept_dict" object)')
    p2c = data.get("path_to_concept") or {}
    if not isinstance(p2c, dict):
        raise UserError(f'{file}: "path_to_concept" must be an object {{image_path: "<concept>"}}')
    concepts, problems = [], []
    for key, entry in data["concept_dict"].items():
        if not isinstance(entry, dict):
            problems.append((key, None, "entry_not_an_object"))
            continue
        name = entry.get("name") if isinstance(entry.get("name"), str) and entry.get("name") else bare_key(key)
        info, category = entry.get("info", ""), entry.get("category") or DEFAULT_CATEGORY
        if not isinstance(info, str) or not isinstance(category, str):
            problems.append((key, None, "info_or_category_not_text"))
            continue
        main = entry.get("image")
        images = [main] if isinstance(main, str) else list(main) if isinstance(main, list) else []
        images += [p for p, k in p2c.items() if k == key]
        images = list(dict.fromkeys(i for i in images if isinstance(i, str) and i))
        if not images:
            problems.append((key, None, "no_image"))
            continue
        concepts.append(Concept(key, name, info.strip(), category.strip(), images))
    return concepts, problems


def bare_key(key: str) -> str:
    return key[1:-1] if key.startswith("<") and key.endswith(">") else key


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _scan_folder(source: Path) -> tuple[list[Concept], list[tuple[str, str | None, str]], Path]:
    concepts, problems = [], []
    for d in sorted(p for p in source.iterdir() if p.is_dir() and not p.name.startswith(".")):
        key = f"<{d.name}>"
        images = sorted(str(f) for f in d.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        info = _read_text(d / "info.txt")
        if info is None:
            problems.append((key, None, "info_missing"))
            continue
        if not images:
            problems.append((key, None, "no_image"))
            continue
        category = _read_text(d / "category.txt") or DEFAULT_CATEGORY
        concepts.append(Concept(key, d.name, info, category.splitlines()[0].strip(), images))
    return concepts, problems, source


def _locate(image: str, base: Path) -> Path | None:
    """Find a database image: absolute, relative to the database file, to the working directory, or by file name next to the database."""
    p = Path(image)
    for cand in [p] if p.is_absolute() else [base / p, Path.cwd() / p, base / p.name]:
        if cand.is_file():
            return cand
    return None


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class BuildReport:
    concepts: int
    images: int
    quarantined: list[dict]
    out: Path


def build_database(
    source: Path, out: Path, clip: Path, *, device: str | None = None, batch_size: int = 32
) -> BuildReport:
    """Validate a concept folder or an existing database.json, copy its images, write database + index."""
    source, out = Path(source), Path(out)
    if source.is_dir() and not (source / DB_FILE).is_file():
        if not any(p.is_dir() for p in source.iterdir()):
            raise UserError(f"{source}: expected one sub-folder per concept (images + info.txt) or a database.json")
        concepts, problems, base = _scan_folder(source)
    elif source.is_file() or (source / DB_FILE).is_file():
        file = source if source.is_file() else source / DB_FILE
        concepts, problems = _parse_json_db(read_json(file, "database"), file)
        base = file.parent
    else:
        raise UserError(f"database source not found: {source}")
    if out.resolve() == base.resolve() or (out / DB_FILE).exists() and not (out / INDEX_FILE).exists():
        raise UserError(f"{out}: refusing to write into the source folder or over a database not built by repic")

    quarantine = [{"concept": k, "image": i, "reason": r} for k, i, r in problems]
    seen: dict[str, str] = {}
    kept: list[tuple[Concept, list[Path]]] = []
    for c in progress.track(concepts, "Checking images"):
        if c.key.lower() in seen:
            quarantine.append(
                {"concept": c.key, "image": None, "reason": f"duplicate_name (same as {seen[c.key.lower()]})"}
            )
            continue
        good = []
        for img in c.images:
            found = _locate(img, base)
            reason = "image_missing" if found is None else _check_decodes(found)
            if reason:
                quarantine.append({"concept": c.key, "image": img, "reason": reason})
            else:
                good.append(found)
        if not good:
            quarantine.append({"concept": c.key, "image": None, "reason": "no_valid_images"})
            continue
        seen[c.key.lower()] = c.key
        kept.append((c, good))
    if not kept:
        raise UserError(f"{source}: no usable concepts (see the reasons: {sorted({q['reason'] for q in quarantine})})")

    from curate.evaluate.retrieval import ClipEmbedder

    embedder = ClipEmbedder(clip, device=device, batch_size=batch_size)
    images_dir = out / "images"
    if images_dir.exists():
        shutil.rmtree(images_dir)
    final: dict[str, Concept] = {}
    used_dirs: set[str] = set()
    for c, files in kept:
        sub = _SAFE.sub("_", c.name).strip("._") or "concept"
        while sub.lower() in used_dirs:
            sub += "_"
        used_dirs.add(sub.lower())
        rels = []
        for n, f in enumerate(files):
            rel = f"images/{sub}/{n:03d}{f.suffix.lower()}"
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, out / rel)
            rels.append(rel)
        final[c.key] = Concept(c.key, c.name, c.info, c.category, rels)
    db = Database(out, final)
    index = EmbeddingIndex.build(db, embedder)
    atomic_write_json(out / DB_FILE, db.to_json(), indent=4)
    index.save(out)
    atomic_write_json(out / QUARANTINE_FILE, quarantine)
    return BuildReport(len(final), len(index.images), quarantine, out)


def _check_decodes(path: Path) -> str:
    try:
        imageio.open_image(str(path))
    except Exception:
        return "image_unreadable"
    return ""


@dataclass
class EmbeddingIndex:
    vectors: np.ndarray  # (rows, dim) float32, unit length
    images: list[str]  # database path of each row
    concepts: list[str]  # concept key of each row
    clip_fingerprint: str

    @classmethod
    def build(cls, db: Database, embedder) -> "EmbeddingIndex":
        from PIL import Image

        rows = [(img, c.key) for c in db.concepts.values() for img in c.images]
        pics: list[Image.Image] = [imageio.open_image(str(db.resolve(img))) for img, _ in rows]
        vectors = embedder.embed(pics, description="Embedding database")
        return cls(vectors, [r[0] for r in rows], [r[1] for r in rows], embedder.fingerprint)

    def save(self, folder: Path) -> None:
        np.save(folder / VECTORS_FILE, self.vectors.astype(np.float32))
        meta = {
            "format": INDEX_FORMAT,
            "clip_fingerprint": self.clip_fingerprint,
            "dim": int(self.vectors.shape[1]),
            "rows": [{"image": i, "concept": c} for i, c in zip(self.images, self.concepts)],
        }
        atomic_write_json(folder / INDEX_FILE, meta)

    @classmethod
    def load(cls, folder: Path) -> "EmbeddingIndex":
        folder = Path(folder)
        folder = folder if folder.is_dir() else folder.parent
        meta = read_json(folder / INDEX_FILE, "database index")
        if not isinstance(meta, dict) or meta.get("format") != INDEX_FORMAT:
            raise UserError(f"{folder / INDEX_FILE}: not a repic database index (format {INDEX_FORMAT})")
        try:
            vectors = np.load(folder / VECTORS_FILE)
        except (OSError, ValueError):
            raise UserError(f"{folder / VECTORS_FILE}: missing or unreadable; rebuild with `repic db build`") from None
        rows = meta.get("rows", [])
        if vectors.ndim != 2 or vectors.shape[0] != len(rows):
            raise UserError(f"{folder}: {VECTORS_FILE} does not match {INDEX_FILE}; rebuild with `repic db build`")
        return cls(vectors, [r["image"] for r in rows], [r["concept"] for r in rows], meta.get("clip_fingerprint", ""))

    def check_model(self, embedder) -> None:
        if embedder.fingerprint != self.clip_fingerprint:
            raise UserError(
                f"the database index was built with a different CLIP model than {embedder.path}; use the same --clip as `repic db build`"
            )
