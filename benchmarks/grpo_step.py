"""Seconds per GRPO step and peak memory: stock TRL GRPOTrainer vs train.fast.FastGRPOTrainer.

Both trainers run in the same process on the same device with the same random-init model
architecture, data, settings and seed (RePIC settings: 4 prompts x 8 generations per step,
640x480 queries plus 128x128 reference crops, completions that always run to 128 tokens,
beta 0.04, LoRA r64 on the language model, bf16, gradient checkpointing). The model has
the real Qwen2.5-VL-7B architecture (``--size 3b`` for 3B) with random weights, and a
tokenizer/processor built offline with the released token-id layout (no download).

    python benchmarks/grpo_step.py                      # GPU: stock vs fast, table on stdout
    python benchmarks/grpo_step.py --record             # ... and append the table to benchmarks/RESULTS.md
    python benchmarks/grpo_step.py --variants stock,fast,fast:ckpt2 --profile
    python benchmarks/grpo_step.py --tiny               # CPU: same code path, tiny model, ~1 minute

The GPU machine (no network; ../shared/reference/gpu-machine.md) lacks trl, datasets and pydantic.
Download their wheels here into the git-ignored .whl/ and carry that folder:

    pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
      trl==1.16.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 xxhash==4.1.0 fsspec==2026.9.0 \
      pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 typing-extensions

then run there (about 4 minutes for 7B, stock + fast, 1 warm-up + 3 measured steps each):

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && \
      PYTHONPATH=/tmp/site:$PWD python3 benchmarks/grpo_step.py --record --json $OUT/grpo_step.json
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("REPIC_PROGRESS", "0")

ARCH = {  # released config.json values (see ../shared/reference/trl-grpo-vlm.md)
    "7b": dict(
        hidden_size=3584,
        intermediate_size=18944,
        num_hidden_layers=28,
        num_attention_heads=28,
        num_key_value_heads=4,
        tie_word_embeddings=False,
        vocab_size=152064,
    ),
    "3b": dict(
        hidden_size=2048,
        intermediate_size=11008,
        num_hidden_layers=36,
        num_attention_heads=16,
        num_key_value_heads=2,
        tie_word_embeddings=True,
        vocab_size=151936,
    ),
}
HEADING = "## GRPO step: FastGRPOTrainer vs stock TRL GRPOTrainer"


def real_config(size: str, tok):
    from transformers import Qwen2_5_VLConfig

    from tests.support.tiny_qwen import special_ids

    ids, arch = special_ids(tok), dict(ARCH[size])
    tie = arch.pop("tie_word_embeddings")
    return Qwen2_5_VLConfig(
        text_config=dict(
            **arch,
            max_position_embeddings=128000,
            rms_norm_eps=1e-6,
            tie_word_embeddings=tie,
            rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]},
            bos_token_id=ids["<|endoftext|>"],
            eos_token_id=ids["<|im_end|>"],
            pad_token_id=ids["<|endoftext|>"],
        ),
        vision_config=dict(
            depth=32,
            hidden_size=1280,
            intermediate_size=3420,
            num_heads=16,
            out_hidden_size=arch["hidden_size"],
            fullatt_block_indexes=[7, 15, 23, 31],
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            window_size=112,
            tokens_per_second=2,
        ),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=tie,
    )


def settings(args) -> dict:
    if args.tiny:
        return dict(
            query=(112, 84),
            crop=(56, 56),
            prompts=2,
            generations=2,
            completion=8,
            min_pixels=4 * 28 * 28,
            max_pixels=16 * 28 * 28,
            bf16=False,
            device="cpu",
        )
    return dict(
        query=(640, 480),
        crop=(128, 128),
        prompts=args.prompts,
        generations=args.generations,
        completion=args.completion,
        min_pixels=3136,
        max_pixels=args.max_pixels,
        bf16=True,
        device="cuda",
    )


def make_rows(n: int, query, crop) -> list[dict]:
    """RePIC-shaped rows cycling over the four tasks (references first, query last)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)

    def img(size):
        return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))

    im, tx = {"type": "image", "text": None}, lambda s: {"type": "text", "text": s}  # noqa: E731
    layouts = [
        ("oct", [im, tx("This is <bo>. Is <bo> in this image? Answer yes or no."), im], 1, '"yes"'),
        ("vlt", [im, tx("Give the bounding box [x1, y1, x2, y2] of the person on the left.")], 0, "[10, 20, 200, 300]"),
        ("ict_single", [im, tx("This is <al>."), im, tx("Describe the image in detail using the name.")], 1, '"<al>"'),
        (
            "ict_multi",
            [im, tx("This is <al>."), im, tx("This is <bo>."), im, tx("Describe the image using both names.")],
            2,
            '["<al>", "<bo>"]',
        ),
    ]
    rows = []
    for i in range(n):
        task, content, crops, solution = layouts[i % 4]
        rows.append(
            {
                "id": f"b{i}",
                "task": task,
                "prompt": [{"role": "user", "content": content}],
                "images": [img(crop) for _ in range(crops)] + [img(query)],
                "solution": solution,
                "names": [],
                "source": "bench",
                "source_ids": [],
                "template": f"{task}.bench",
            }
        )
    return rows


def run_variant(name: str, args, s: dict, tok, processor, dataset, out_dir: Path) -> dict:
    import torch
    from transformers import PrinterCallback, ProgressCallback, Qwen2_5_VLForConditionalGeneration, TrainerCallback

    from tests.support.tiny_qwen import generation_config, special_ids, tiny_config
    from train.config import load_config
    from train.trainer import ModelSource, build_trainer

    trainer_kind, _, option = name.partition(":")
    every = int(option.removeprefix("ckpt")) if option.startswith("ckpt") else 1
    ids = special_ids(tok)
    cfg = load_config(
        None,
        {
            "trainer": trainer_kind,
            "lm_checkpoint_every": every,
            "num_generations": s["generations"],
            "per_device_train_batch_size": s["prompts"] * s["generations"] // args.grad_accum,
            "gradient_accumulation_steps": args.grad_accum,
            "max_completion_length": s["completion"],
            "max_steps": args.warmup + args.steps,
            "bf16": s["bf16"],
            "save_strategy": "no",
            "logging_steps": 1,
            # completions always run to the limit: end-of-turn tokens are never sampled
            "suppress_tokens": [ids["<|im_end|>"], ids["<|endoftext|>"]],
        },
    )
    device = torch.device(s["device"])
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    torch.manual_seed(0)
    model_cfg = tiny_config(tok) if args.tiny else real_config(args.size, tok)
    with device:
        model = Qwen2_5_VLForConditionalGeneration._from_config(
            model_cfg, dtype=torch.bfloat16 if s["bf16"] else torch.float32, attn_implementation="sdpa"
        )
    model.generation_config = generation_config(tok)
    source = ModelSource(
        ref=f"random-init Qwen2.5-VL-{'tiny' if args.tiny else args.size.upper()}",
        path="",
        revision=None,
        processor=processor,
    )

    class Timer(TrainerCallback):
        def __init__(self):
            self.ends: list[float] = []
            self.prof = None

        def _sync(self):
            if device.type == "cuda":
                torch.cuda.synchronize()

        def on_train_begin(self, *a, **k):
            self._sync()
            self.ends.append(time.perf_counter())

        def on_step_end(self, a, state, *rest, **k):
            self._sync()
            self.ends.append(time.perf_counter())
            if args.profile and state.global_step == args.warmup:
                acts = [torch.profiler.ProfilerActivity.CPU] + (
                    [torch.profiler.ProfilerActivity.CUDA] if device.type == "cuda" else []
                )
                self.prof = torch.profiler.profile(activities=acts)
                self.prof.__enter__()
            elif self.prof is not None and state.global_step == args.warmup + 1:
                self.prof.__exit__(None, None, None)
                key = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
                print(f"--- profile of step {state.global_step} ({name}) ---")
                print(self.prof.key_averages().table(sort_by=key, row_limit=25))
                self.prof = None

    timer = Timer()

    class Data:  # what build_trainer needs from train.data.TrainingData
        pass

    data = Data()
    data.dataset = dataset
    trainer = build_trainer(cfg, data, source, out_dir / name.replace(":", "-"), callbacks=[timer], instance=model)
    for noisy in (ProgressCallback, PrinterCallback):  # keep stdout to the results
        trainer.remove_callback(noisy)
    trainer.train()
    steps = [b - a for a, b in zip(timer.ends, timer.ends[1:])][args.warmup :]
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    result = {
        "variant": name,
        "steps_measured": len(steps),
        "s_per_step_mean": sum(steps) / len(steps) if steps else math.nan,
        "s_per_step_min": min(steps) if steps else math.nan,
        "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None,
        "loss_finite": all(math.isfinite(x) for x in losses),
        "reward_keys": sorted(
            {k for e in trainer.state.log_history for k in e if k.startswith("rewards/") and k.endswith("/mean")}
        ),
    }
    cache = getattr(trainer, "vision_cache", None)
    if cache is not None:
        result["vit_images_encoded"], result["vit_images_requested"] = cache.encoded, cache.requested
    del trainer, model
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def environment(s: dict) -> dict:
    import torch
    import transformers
    import trl

    env = {
        "device": "cpu: " + (platform.processor() or platform.machine()),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
        "python": platform.python_version(),
    }
    if s["device"] == "cuda":
        env["device"] = torch.cuda.get_device_name(0)
    return env


def table(results: list[dict], env: dict, s: dict, args) -> str:
    base = results[0]["s_per_step_mean"]
    lines = [
        f"{env['device']}; torch {env['torch']}, transformers {env['transformers']}, trl {env['trl']}; "
        f"{'tiny model (CPU check of the code path; its timings mean nothing)' if args.tiny else 'Qwen2.5-VL-' + args.size.upper() + ' architecture, random init'}; "
        f"{s['prompts']} prompts x {s['generations']} generations, {s['completion']}-token completions, "
        f"query {s['query'][0]}x{s['query'][1]} + {s['crop'][0]}x{s['crop'][1]} crops, max_pixels {s['max_pixels']}, "
        f"grad accum {args.grad_accum}, {args.warmup} warm-up + {args.steps} measured steps",
        "",
        "| trainer | s/step (mean) | s/step (min) | speed-up vs first row | peak GiB | ViT images encoded/requested |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        peak = f"{r['peak_gib']:.1f}" if r["peak_gib"] is not None else "n/a (CPU)"
        vit = f"{r['vit_images_encoded']}/{r['vit_images_requested']}" if "vit_images_encoded" in r else "all"
        lines.append(
            f"| {r['variant']} | {r['s_per_step_mean']:.2f} | {r['s_per_step_min']:.2f} | "
            f"{base / r['s_per_step_mean']:.2f}x | {peak} | {vit} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiny", action="store_true", help="CPU check with the tiny model (same code path)")
    p.add_argument("--size", choices=sorted(ARCH), default="7b")
    p.add_argument("--variants", default="stock,fast", help="comma list: stock, fast, fast:ckptN (every N-th LM layer)")
    p.add_argument("--prompts", type=int, default=4)
    p.add_argument("--generations", type=int, default=8)
    p.add_argument("--completion", type=int, default=128)
    p.add_argument("--max-pixels", type=int, default=200704)
    p.add_argument("--grad-accum", type=int, default=1, help="micro-batches per step (the batch is split, not grown)")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--profile", action="store_true", help="print a torch.profiler table of the first measured step")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--record", action="store_true", help="append the table to the results file")
    p.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "RESULTS.md", help="results file for --record")
    args = p.parse_args(argv)

    import tempfile

    import datasets

    from curate.materialize.rows import FEATURES
    from tests.support.tiny_qwen import build_processor, build_tokenizer

    s = settings(args)
    if s["device"] == "cuda":
        import torch

        if not torch.cuda.is_available():
            p.error("no CUDA device; use --tiny for the CPU check")
    datasets.disable_progress_bars()
    tok = build_tokenizer(real_layout=not args.tiny)
    processor = build_processor(tok, min_pixels=s["min_pixels"], max_pixels=s["max_pixels"])
    n_rows = s["prompts"] * (args.warmup + args.steps + 1)
    dataset = datasets.Dataset.from_list(make_rows(n_rows, s["query"], s["crop"]), features=FEATURES)
    env = environment(s)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.variants.split(","):
            results.append(run_variant(name.strip(), args, s, tok, processor, dataset, Path(tmp)))
            print(json.dumps(results[-1]), flush=True)
    text = table(results, env, s, args)
    print(text)
    if args.json:
        args.json.write_text(json.dumps({"env": env, "settings": s, "results": results}, indent=2, default=str))
    if args.record:
        results_md = args.results
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d")
        cmd = "python benchmarks/grpo_step.py " + " ".join(argv if argv is not None else sys.argv[1:])
        with open(results_md, "a", encoding="utf-8") as fh:
            fh.write(f"\n{HEADING}\n\n`{cmd}` ({stamp})\n\n{text}\n")
    return results


if __name__ == "__main__":
    main()
