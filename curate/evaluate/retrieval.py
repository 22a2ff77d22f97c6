"""Retrieval of personal concepts for a query image (the RAP / RePIC retrieval setting).

Candidate regions come from an ultralytics detector (YOLO or YOLO-World weights read from
a path); the whole query image is always a candidate too. Every candidate and every
database image is embedded with a CLIP image encoder (transformers ``CLIPModel`` read
from a path) and L2-normalized; the concepts whose images are nearest (Euclidean
distance) to any candidate are returned, nearest first, one entry per concept.

torch, transformers and ultralytics are imported only when a model is loaded.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from curate import progress
from curate.errors import UserError

MIN_REGION_PX = 4


def ultralytics_offline() -> None:
    """Ultralytics switches that keep it offline (they must be set before it is imported), and Pillow's own
    ``Image.open`` back: importing ultralytics replaces it with a wrapper that, for a file Pillow cannot identify,
    tries to install and import ``pi-heif`` (so a corrupt image raised ModuleNotFoundError instead of Pillow's
    UnidentifiedImageError in the whole process, and every reader's quarantine reasons depended on it)."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "False")
    os.environ.setdefault("YOLO_VERBOSE", "False")
    os.environ.setdefault("YOLO_CONFIG_DIR", os.path.join(tempfile.gettempdir(), "repic-ultralytics"))
    try:
        from ultralytics.utils import patches  # applies its patch when first imported
    except ImportError:  # the detect extra is not installed: nothing patched
        return
    from PIL import Image

    original = getattr(patches, "_image_open", None)  # what the wrapper calls: Pillow's own open
    if original is not None and Image.open is not original:
        Image.open = original


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def model_fingerprint(path: Path) -> str:
    """Identity of a model folder: its config files' bytes plus the names and sizes of its weight files."""
    path = Path(path)
    h = hashlib.sha256()
    for f in sorted(path.iterdir()):
        if f.suffix == ".json" and f.is_file():
            h.update(f.name.encode() + b"\0" + f.read_bytes())
        elif f.suffix in {".safetensors", ".bin", ".pt"} and f.is_file():
            h.update(f"{f.name}\0{f.stat().st_size}".encode())
    return h.hexdigest()


def _features(out):
    """transformers 5 returns an output object from get_*_features; older versions a tensor."""
    return out if hasattr(out, "shape") else out.pooler_output


class ClipEmbedder:
    """L2-normalized CLIP image (and text) embeddings from a local ``CLIPModel`` folder."""

    def __init__(self, path: Path | str, *, device: str | None = None, batch_size: int = 32):
        path = Path(path)
        if not (path / "config.json").is_file():
            raise UserError(f"CLIP model folder not found or has no config.json: {path}")
        import torch
        from transformers import CLIPImageProcessor, CLIPModel

        self.path = path
        self.device = device or default_device()
        self.batch_size = max(1, batch_size)
        try:
            self.model = CLIPModel.from_pretrained(path).to(self.device).eval()
            self.processor = CLIPImageProcessor.from_pretrained(path)
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot load a CLIP model from {path}: {str(exc).splitlines()[0]}") from None
        self.fingerprint = model_fingerprint(path)
        self._torch = torch

    @property
    def dim(self) -> int:
        return int(self.model.config.projection_dim)

    def embed(self, images: Sequence[Image.Image], *, description: str | None = None) -> np.ndarray:
        """(len(images), dim) float32, unit length, in input order."""
        torch = self._torch
        out = np.zeros((len(images), self.dim), dtype=np.float32)
        starts = range(0, len(images), self.batch_size)
        if description:
            starts = progress.track(starts, description, total=len(starts))
        with torch.inference_mode():
            for s in starts:
                batch = [im.convert("RGB") for im in images[s : s + self.batch_size]]
                pixels = self.processor(images=batch, return_tensors="pt")["pixel_values"].to(self.device)
                feats = _features(self.model.get_image_features(pixel_values=pixels)).float()
                feats = feats / feats.norm(p=2, dim=-1, keepdim=True).clamp_min(1e-12)
                out[s : s + len(batch)] = feats.cpu().numpy()
        return out

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        from transformers import AutoTokenizer

        torch = self._torch
        tok = AutoTokenizer.from_pretrained(self.path)
        with torch.inference_mode():
            enc = tok(list(texts), padding=True, truncation=True, return_tensors="pt").to(self.device)
            feats = _features(self.model.get_text_features(**enc)).float()
            feats = feats / feats.norm(p=2, dim=-1, keepdim=True).clamp_min(1e-12)
        return feats.cpu().numpy()


class RegionDetector:
    """Candidate boxes from ultralytics YOLO / YOLO-World weights at a path (never downloaded)."""

    def __init__(
        self,
        weights: Path | str,
        *,
        device: str | None = None,
        conf: float = 0.1,
        imgsz: int = 640,
        max_regions: int = 16,
        batch_size: int = 8,
    ):
        weights = Path(weights)
        if not weights.is_file():
            raise UserError(f"detector weights not found: {weights} (a local YOLO or YOLO-World .pt file)")
        ultralytics_offline()
        from ultralytics import YOLO

        try:
            self.model = YOLO(str(weights))
        except Exception as exc:  # ultralytics raises many kinds for a bad file
            raise UserError(
                f"cannot load detector weights {weights}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            ) from None
        self.device = device or default_device()
        self.conf, self.imgsz, self.max_regions, self.batch_size = conf, imgsz, max_regions, max(1, batch_size)

    @property
    def is_world(self) -> bool:
        from ultralytics.nn.tasks import WorldModel

        return isinstance(self.model.model, WorldModel)

    def set_vocabulary(self, names: Sequence[str], text_features: np.ndarray) -> None:
        """Give a YOLO-World model its class names with precomputed text embeddings (no CLIP download).

        ``text_features`` are unit-length text embeddings, one row per name, of the width the
        model was trained with (512 for the released YOLO-World models, i.e. CLIP ViT-B/32).
        """
        import torch

        if not self.is_world:
            raise UserError("a vocabulary can only be set on YOLO-World weights")
        net = self.model.model
        width = int(net.txt_feats.shape[-1])
        if text_features.ndim != 2 or text_features.shape[0] != len(names) or text_features.shape[1] != width:
            raise UserError(
                f"the text encoder gives {text_features.shape[-1]}-d embeddings but the YOLO-World model expects {width}-d"
            )
        net.txt_feats = torch.as_tensor(text_features, dtype=torch.float32).unsqueeze(0)
        net.model[-1].nc = len(names)
        net.names = list(names)
        self.model.predictor = None

    def boxes(self, images: Sequence[Image.Image]) -> list[list[tuple[float, float, float, float]]]:
        """For each image, up to ``max_regions`` boxes (x1, y1, x2, y2), most confident first."""
        out: list[list[tuple[float, float, float, float]]] = []
        for s in range(0, len(images), self.batch_size):
            batch = [im.convert("RGB") for im in images[s : s + self.batch_size]]
            results = self.model.predict(
                source=batch, conf=self.conf, imgsz=self.imgsz, device=self.device, verbose=False, save=False
            )
            for res in results:
                xyxy = res.boxes.xyxy.cpu().numpy().astype(float)
                confs = res.boxes.conf.cpu().numpy()
                order = np.argsort(-confs, kind="stable")[: self.max_regions]
                out.append([tuple(xyxy[i]) for i in order])
        return out


def crop_regions(image: Image.Image, boxes: Sequence[tuple[float, float, float, float]]) -> list[Image.Image]:
    """The whole image first, then each box crop that is at least MIN_REGION_PX on each side."""
    w, h = image.size
    crops = [image]
    for x1, y1, x2, y2 in boxes:
        left, t, r, b = max(0, round(x1)), max(0, round(y1)), min(w, round(x2)), min(h, round(y2))
        if r - left >= MIN_REGION_PX and b - t >= MIN_REGION_PX:
            crops.append(image.crop((left, t, r, b)))
    return crops


@dataclass(frozen=True)
class Hit:
    concept: str  # database key, e.g. "<Anya>"
    image: str  # the concept's database image nearest to the query (as written in database.json)
    distance: float


def rank_concepts(
    queries: np.ndarray, index: np.ndarray, concepts: Sequence[str], images: Sequence[str], k: int
) -> list[Hit]:
    """Top-k concepts by the smallest Euclidean distance between any query row and any of the concept's rows.

    Ties go to the earlier index row, so the ranking is deterministic.
    """
    q = queries.astype(np.float64)
    e = index.astype(np.float64)
    d2 = (q * q).sum(1)[:, None] + (e * e).sum(1)[None, :] - 2.0 * q @ e.T
    row_dist = np.sqrt(np.clip(d2, 0.0, None)).min(axis=0)
    hits: list[Hit] = []
    seen: set[str] = set()
    for row in np.lexsort((np.arange(len(row_dist)), row_dist)):
        c = concepts[row]
        if c in seen:
            continue
        seen.add(c)
        hits.append(Hit(c, images[row], float(row_dist[row])))
        if len(hits) == k:
            break
    return hits


class Retriever:
    """Database index + CLIP embedder (+ optional detector) -> top-k concepts per query image."""

    def __init__(self, index, embedder: ClipEmbedder, detector: RegionDetector | None = None):
        self.index = index  # curate.evaluate.database.EmbeddingIndex
        self.embedder = embedder
        self.detector = detector
        index.check_model(embedder)

    def retrieve(self, images: Sequence[Image.Image], k: int, *, batch_size: int = 8) -> list[list[Hit]]:
        if k < 1:
            raise UserError("top-k must be at least 1")
        results: list[list[Hit]] = []
        with progress.bar("Retrieving", total=len(images)) as advance:
            for s in range(0, len(images), batch_size):
                batch = list(images[s : s + batch_size])
                boxes = self.detector.boxes(batch) if self.detector else [[] for _ in batch]
                groups = [crop_regions(im, b) for im, b in zip(batch, boxes)]
                flat = [c for g in groups for c in g]
                feats = self.embedder.embed(flat)
                start = 0
                for g in groups:
                    q = feats[start : start + len(g)]
                    start += len(g)
                    results.append(rank_concepts(q, self.index.vectors, self.index.concepts, self.index.images, k))
                advance(len(batch))
        return results


def open_retriever(
    db,
    db_path: Path,
    clip: Path | None,
    *,
    detector: Path | None = None,
    detector_text: Path | None = None,
    device: str | None = None,
    conf: float = 0.1,
    imgsz: int = 640,
) -> Retriever:
    """A Retriever for a built database (``db`` loaded from ``db_path``): CLIP, optional detector and its vocabulary."""
    from curate.evaluate.database import EmbeddingIndex

    if clip is None:
        raise UserError("retrieval needs --clip (the CLIP folder the database was built with)")
    index = EmbeddingIndex.load(db_path)
    embedder = ClipEmbedder(clip, device=device)
    index.check_model(embedder)
    region_detector = None
    if detector is not None:
        region_detector = RegionDetector(detector, device=device, conf=conf, imgsz=imgsz)
        if detector_text is not None and region_detector.is_world:
            vocab = db.categories()
            region_detector.set_vocabulary(vocab, ClipEmbedder(detector_text, device=device).embed_text(vocab))
    return Retriever(index, embedder, region_detector)
