"""Shared helpers of the train tests: tiny RePIC build folders and the small GRPO settings."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from PIL import Image

TEXT = lambda s: {"type": "text", "text": s}  # noqa: E731


IMAGE = {"type": "image", "text": None}


def _img(color, size=(56, 56)):
    return Image.new("RGB", size, color)


def demo_rows() -> list[dict]:
    """One or two rows per task in the mixture layout of curate.materialize.rows (tiny images)."""

    def row(i, task, content, images, solution, names=(), template=""):
        return {
            "id": f"r{i:03d}",
            "task": task,
            "prompt": [{"role": "user", "content": content}],
            "images": images,
            "solution": json.dumps(solution),
            "names": list(names),
            "source": "demo",
            "source_ids": [f"s{i}"],
            "template": template or f"{task}.t00",
        }

    return [
        row(
            0,
            "oct",
            [IMAGE, TEXT("This is <bo>. Is <bo> in this image? Answer yes or no."), IMAGE],
            [_img("red"), _img("blue", (70, 56))],
            "yes",
            ["<bo>"],
        ),
        row(
            1,
            "vlt",
            [IMAGE, TEXT("Give the bounding box [x1, y1, x2, y2] of the red cup.")],
            [_img("green", (84, 56))],
            [4, 4, 40, 30],
        ),
        row(
            2,
            "ict_single",
            [IMAGE, TEXT("This is <al>. Describe the query image using the name."), IMAGE],
            [_img("yellow"), _img("purple", (56, 70))],
            "<al>",
            ["<al>"],
        ),
        row(
            3,
            "ict_multi",
            [IMAGE, TEXT("This is <al>."), IMAGE, TEXT("This is <bo>. Describe the query image."), IMAGE],
            [_img("white"), _img("black"), _img("gray", (70, 70))],
            ["<al>", "<bo>"],
            ["<al>", "<bo>"],
        ),
    ]


def write_build(folder: Path, rows: list[dict] | None = None, *, status: str = "complete") -> Path:
    """Write ``rows`` as a build folder: data/train-00000-of-00001.parquet + manifest.json."""
    import datasets

    from curate.materialize.rows import FEATURES

    rows = demo_rows() if rows is None else rows
    folder = Path(folder)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    shard = folder / "data" / "train-00000-of-00001.parquet"
    datasets.Dataset.from_list(rows, features=FEATURES).to_parquet(str(shard))
    by_task: dict[str, int] = {}
    for r in rows:
        by_task[r["task"]] = by_task.get(r["task"], 0) + 1
    manifest = {
        "format": "repic-build/1",
        "status": status,
        "name": "tiny",
        "version": "1.0.0",
        "seed": 0,
        "recipe_hash": "ab" * 32,
        "toolkit": {"version": "0.1.0", "git_commit": "0" * 40},
        "counts": {"total": len(rows), "by_task": by_task},
        "files": {
            "data/train-00000-of-00001.parquet": {
                "sha256": hashlib.sha256(shard.read_bytes()).hexdigest(),
                "size": shard.stat().st_size,
                "rows": len(rows),
            }
        },
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return folder


SMALL = {
    "bf16": False,
    "num_generations": 2,
    "per_device_train_batch_size": 2,
    "gradient_accumulation_steps": 1,
    "max_completion_length": 8,
    "max_steps": 2,
    "learning_rate": 0.05,
    "save_strategy": "no",
}


def completion_checksum(completion_ids, **kwargs):
    """A test reward that differs between any two different completions (ties ~1 in 1009), so that
    advantages (and LoRA updates) are non-zero whichever tokens this machine's float rounding samples.

    (A coarser reward, the fraction of even token ids, tied inside every group on a CI machine whose
    thread count changed the sampled tokens.)"""
    return [sum((i + 1) * t for i, t in enumerate(ids)) % 1009 / 1009 for ids in completion_ids]


def lora_b(model) -> dict:
    return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_B" in n}


def paired_trainers(kind: str, overrides: dict, ckpt_every: int, tiny_model, tiny_build, out: Path):
    """A stock trainer and a ``kind`` trainer with identical non-zero LoRA weights, in training mode with gradient
    checkpointing every ``ckpt_every`` layers, and the first batch of their dataloader: (stock, other, batch)."""
    import torch

    from train.config import load_config
    from train.data import load_training_data
    from train.trainer import build_trainer, resolve_model

    data = load_training_data(str(tiny_build))
    trainers = []
    for name in ("stock", kind):
        cfg = load_config(None, {**overrides, "trainer": name, "lm_checkpoint_every": ckpt_every})
        trainers.append(build_trainer(cfg, data, resolve_model(str(tiny_model)), out / name, [completion_checksum]))
    g = torch.Generator().manual_seed(0)
    weights = {
        n: torch.randn(p.shape, generator=g) * 0.05 for n, p in trainers[0].model.named_parameters() if "lora_" in n
    }
    for trainer in trainers:
        with torch.no_grad():
            for n, p in trainer.model.named_parameters():
                if n in weights:
                    p.copy_(weights[n])
        trainer.model.train()
        trainer.model.gradient_checkpointing_enable(
            gradient_checkpointing_kwargs=trainer.args.gradient_checkpointing_kwargs
        )
        trainer.current_gradient_accumulation_steps = 1
    batch = next(iter(trainers[0].get_train_dataloader()))
    return trainers[0], trainers[1], batch
