"""``repic inspect``: what a build holds (composition tables) and what it looks like (contact sheet).

:func:`composition` reads the shards without decoding pixels (image sizes come
from the encoded headers) and counts examples per task x source, OCT yes/no
balance, names per example and images per example, with image size ranges
per task. :func:`write_contact_sheet` draws several examples per task: their
images (the VLT answer box drawn on the query), prompt and solution.
"""

from __future__ import annotations

import io
import json
import textwrap
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow.parquet as pq
from PIL import Image, ImageDraw, ImageFont

from curate.errors import UserError
from curate.materialize.rows import TASKS

THUMB = 150
TEXT_W = 560
ROW_H = 190
PAD = 10


def shard_paths(build_dir: str | Path) -> list[Path]:
    build_dir = Path(build_dir)
    shards = sorted((build_dir / "data").glob("train-*.parquet"))
    if not shards:
        raise UserError(f"{build_dir} holds no shards (data/train-*.parquet); is it a build folder?")
    return shards


def iter_rows(build_dir: str | Path, columns: list[str] | None = None):
    """Rows of every shard, in order, as plain dicts (images as {'bytes', 'path'})."""
    for shard in shard_paths(build_dir):
        pf = pq.ParquetFile(shard)
        for batch in pf.iter_batches(batch_size=256, columns=columns):
            yield from batch.to_pylist()


def image_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as im:
        return im.size


def composition(build_dir: str | Path) -> dict:
    """Counts of a build: task x source, OCT answers, names and images per example, image sizes per task."""
    by_ts: dict[str, Counter] = defaultdict(Counter)
    answers, names, n_images = Counter(), defaultdict(Counter), defaultdict(Counter)
    sizes: dict[str, list[tuple[int, int]]] = defaultdict(list)
    total = 0
    for row in iter_rows(build_dir, ["task", "source", "solution", "names", "images"]):
        total += 1
        task = row["task"]
        by_ts[task][row["source"]] += 1
        if task == "oct":
            answers[json.loads(row["solution"])] += 1
        names[task][len(row["names"])] += 1
        n_images[task][len(row["images"])] += 1
        sizes[task].extend(image_size(im["bytes"]) for im in row["images"])
    size_stats = {}
    for task, ss in sizes.items():
        ws, hs = [w for w, _ in ss], [h for _, h in ss]
        size_stats[task] = {
            "images": len(ss),
            "width": [min(ws), round(sum(ws) / len(ws)), max(ws)],
            "height": [min(hs), round(sum(hs) / len(hs)), max(hs)],
            "pixels_max": max(w * h for w, h in ss),
        }
    order = [t for t in TASKS if t in by_ts] + sorted(t for t in by_ts if t not in TASKS)
    return {
        "total": total,
        "task_source": {t: dict(sorted(by_ts[t].items())) for t in order},
        "oct_answers": {"yes": answers.get("yes", 0), "no": answers.get("no", 0)},
        "names_per_example": {t: dict(sorted(names[t].items())) for t in order},
        "images_per_example": {t: dict(sorted(n_images[t].items())) for t in order},
        "image_sizes": {t: size_stats[t] for t in order if t in size_stats},
    }


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType
        return ImageFont.load_default()


def _prompt_text(prompt: list[dict]) -> str:
    users = [m for m in prompt if m["role"] == "user"]
    parts = users[-1]["content"] if users else []
    return " ".join("[img]" if p["type"] == "image" else (p["text"] or "") for p in parts)


def _thumb(data: bytes, box: list[int] | None) -> Image.Image:
    with Image.open(io.BytesIO(data)) as im:
        im = im.convert("RGB")
        if box is not None:
            ImageDraw.Draw(im).rectangle(box, outline=(255, 40, 40), width=max(2, im.size[0] // 150))
        im.thumbnail((THUMB, THUMB))
        return im


def pick_examples(build_dir: str | Path, per_task: int) -> list[dict]:
    """The first ``per_task`` rows of every task, in task order."""
    picked: dict[str, list[dict]] = defaultdict(list)
    for row in iter_rows(build_dir):
        if len(picked[row["task"]]) < per_task:
            picked[row["task"]].append(row)
        if len(picked) == len(TASKS) and all(len(v) >= per_task for v in picked.values()):
            break
    return [r for t in [*TASKS, *sorted(set(picked) - set(TASKS))] for r in picked.get(t, [])]


def write_contact_sheet(build_dir: str | Path, out: str | Path, *, per_task: int = 3) -> Path:
    """A PNG with ``per_task`` examples of every task: images, prompt, solution."""
    rows = pick_examples(build_dir, per_task)
    max_images = max((len(r["images"]) for r in rows), default=1)
    width = PAD + max_images * (THUMB + PAD) + TEXT_W
    sheet = Image.new("RGB", (width, PAD + max(1, len(rows)) * ROW_H), (250, 250, 250))
    draw = ImageDraw.Draw(sheet)
    small, bold = _font(13), _font(15)
    for i, row in enumerate(rows):
        y = PAD + i * ROW_H
        if i:
            draw.line([(0, y - PAD // 2), (width, y - PAD // 2)], fill=(200, 200, 200))
        box = json.loads(row["solution"]) if row["task"] == "vlt" else None
        for k, im in enumerate(row["images"]):
            is_query = k == len(row["images"]) - 1
            sheet.paste(_thumb(im["bytes"], box if is_query else None), (PAD + k * (THUMB + PAD), y))
        x = PAD + max_images * (THUMB + PAD)
        draw.text((x, y), f"{row['task']}  {row['source']}  {row['template']}", fill=(20, 20, 120), font=bold)
        lines = textwrap.wrap(_prompt_text(row["prompt"]), 78)[:8]
        draw.multiline_text((x, y + 22), "\n".join(lines), fill=(30, 30, 30), font=small, spacing=3)
        draw.text((x, y + ROW_H - 34), f"solution: {row['solution']}"[:90], fill=(0, 110, 0), font=bold)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, format="PNG")
    return out
