"""Seconds per GRPO step and peak memory: stock TRL GRPOTrainer vs the fast and shared-prefix trainers.

All variants run in one process on one device with the same random-init architecture, data,
settings and seed: G=8 completions per prompt that always run to 128 tokens, beta 0.04, LoRA
on the language model, gradient checkpointing unless a variant says otherwise. Each variant
builds its own model and trainer, runs ``--warmup`` step(s), then ``--steps`` measured steps
(a ``--profile`` step comes after them and is not measured). With ``--rounds 2`` the variant
list runs forward, then backward (alternating order against drift).

Variants: ``stock`` | ``fast`` | ``shared_prefix``, each with options ``:ckptN`` (checkpoint every N-th
language-model layer; ``ckpt0`` = no checkpointing) and ``:mbM`` (split the step's batch into M micro-batches).

    python benchmarks/grpo_step.py --tiny             # CPU: the code path on a tiny model (timings mean nothing)
    python benchmarks/grpo_step.py --cpu-proxy        # CPU: real token shapes on a small model, ratio vs stock
    python benchmarks/grpo_step.py                    # GPU: random-init Qwen2.5-VL-7B, repic-2k image sizes

The GPU mode writes its table and JSON to ``$OUT`` when set (and ``--json``/``--record`` here).
The GPU machine (no network; ../shared/reference/gpu-machine.md) lacks trl, datasets and pydantic.
Download their wheels here into the git-ignored .whl/ and carry that folder:

    pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
      trl==1.16.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 xxhash==4.1.0 fsspec==2026.9.0 \
      pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 typing-extensions

then the whole GPU check is one command. After the first variant (stock), no variant starts that would end
past 420 s at the pace of the slowest one so far; those are listed as skipped, so the command ends within
8 minutes on one H200. A variant that runs out of memory is recorded as such and the run goes on.

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && \
      PYTHONPATH=/tmp/site:$PWD python3 benchmarks/grpo_step.py --rounds 2 --budget-s 420
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("REPIC_PROGRESS", "0")

from grpo_report import save  # noqa: E402 (after the environment above)
from grpo_shapes import (  # noqa: E402
    CPU_PROXY_SIZES,
    REPIC_2K_PIXELS,
    REPIC_2K_SIZES,
    TINY_SIZES,
    environment,
    make_rows,
    prompt_fraction,
    proxy_config,
    real_config,
    sizes_from_build,
)

HEADING = "## GRPO step: shared-prefix and fast trainers vs stock TRL GRPOTrainer"
GPU_VARIANTS = "stock,shared_prefix,shared_prefix:ckpt2,shared_prefix:ckpt0:mb2,fast,shared_prefix:ckpt4,fast:ckpt2"
CPU_VARIANTS = "stock,fast,shared_prefix"


def settings(args) -> dict:
    base = {"generations": 8, "completion": 128, "min_pixels": REPIC_2K_PIXELS[0], "max_pixels": REPIC_2K_PIXELS[1]}
    if args.tiny:
        return {
            "mode": "tiny",
            "sizes": TINY_SIZES,
            "prompts": 2,
            "generations": 2,
            "completion": 8,
            "min_pixels": 4 * 28 * 28,
            "max_pixels": 16 * 28 * 28,
            "bf16": False,
            "device": "cpu",
            "grad_accum": 1,
            "lora_r": 64,
        }
    if args.cpu_proxy:  # the paper's single-GPU step: 2 prompts x 8, accumulation 2 (one group per micro-batch)
        return dict(
            base, mode="cpu-proxy", sizes=CPU_PROXY_SIZES, prompts=2, bf16=False, device="cpu", grad_accum=2, lora_r=16
        )
    sizes = sizes_from_build(args.sizes_from) if args.sizes_from else REPIC_2K_SIZES
    return dict(
        base,
        mode=f"gpu-{args.size}",
        sizes=sizes,
        prompts=args.prompts,
        bf16=True,
        device="cuda",
        grad_accum=args.grad_accum,
        lora_r=64,
    )


def parse_variant(name: str) -> tuple[str, int, int]:
    kind, *options = name.split(":")
    every, micro = 1, 1
    for opt in options:
        if opt.startswith("ckpt"):
            every = int(opt[4:])
        elif opt.startswith("mb"):
            micro = int(opt[2:])
        else:
            raise SystemExit(f"variant {name}: unknown option {opt!r} (ckptN, mbM)")
    return kind, every, micro


def run_variant(name: str, args, s: dict, tok, processor, dataset, out_dir: Path) -> dict:
    import torch
    from transformers import PrinterCallback, ProgressCallback, Qwen2_5_VLForConditionalGeneration, TrainerCallback

    from tests.support.tiny_qwen import generation_config, special_ids, tiny_config
    from train.config import load_config
    from train.trainer import ModelSource, build_trainer

    kind, every, micro = parse_variant(name)
    ids = special_ids(tok)
    accum = s["grad_accum"] * micro
    measured_end = args.warmup + args.steps
    cfg = load_config(
        None,
        {
            "trainer": kind,
            "lm_checkpoint_every": max(every, 1),
            "gradient_checkpointing": every > 0,
            "num_generations": s["generations"],
            "per_device_train_batch_size": s["prompts"] * s["generations"] // accum,
            "gradient_accumulation_steps": accum,
            "max_completion_length": s["completion"],
            "lora.r": s["lora_r"],
            "lora.alpha": 2 * s["lora_r"],
            "max_steps": measured_end + int(args.profile),
            "bf16": s["bf16"],
            "save_strategy": "no",
            "logging_steps": 1,
            "global_batch_intended": True,
            # completions always run to the limit: end-of-turn tokens are never sampled
            "suppress_tokens": [ids["<|im_end|>"], ids["<|endoftext|>"]],
        },
    )
    device = torch.device(s["device"])
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    torch.manual_seed(0)
    model_cfg = {"tiny": tiny_config, "cpu-proxy": proxy_config}.get(s["mode"], lambda t: real_config(args.size, t))(
        tok
    )
    with device:
        model = Qwen2_5_VLForConditionalGeneration._from_config(
            model_cfg, dtype=torch.bfloat16 if s["bf16"] else torch.float32, attn_implementation="sdpa"
        )
    model.generation_config = generation_config(tok)
    source = ModelSource(ref=f"random-init Qwen2.5-VL ({s['mode']})", path="", revision=None, processor=processor)

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
            if args.profile and state.global_step == measured_end:  # the extra step after the measured ones
                cuda = [torch.profiler.ProfilerActivity.CUDA] if device.type == "cuda" else []
                self.prof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU, *cuda])
                self.prof.__enter__()

        def on_train_end(self, *a, **k):
            if self.prof is not None:
                self.prof.__exit__(None, None, None)
                key = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
                print(f"--- profile of an unmeasured step ({name}) ---")
                print(self.prof.key_averages().table(sort_by=key, row_limit=25))

    timer = Timer()

    class Data:  # what build_trainer needs from train.data.TrainingData
        pass

    data = Data()
    data.dataset = dataset
    trainer = build_trainer(cfg, data, source, out_dir / name.replace(":", "-"), callbacks=[timer], instance=model)
    for noisy in (ProgressCallback, PrinterCallback):  # keep stdout to the results
        trainer.remove_callback(noisy)
    trainer.train()
    steps = [b - a for a, b in zip(timer.ends, timer.ends[1:], strict=False)][args.warmup : measured_end]
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    result = {
        "variant": name,
        "steps_measured": len(steps),
        "s_per_step": steps,
        "s_per_step_mean": sum(steps) / len(steps) if steps else math.nan,
        "s_per_step_min": min(steps) if steps else math.nan,
        "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None,
        "peak_reserved_gib": torch.cuda.max_memory_reserved() / 2**30 if device.type == "cuda" else None,
        "loss_finite": all(math.isfinite(x) for x in losses),
        "reward_keys": sorted(
            {k for e in trainer.state.log_history for k in e if k.startswith("rewards/") and k.endswith("/mean")}
        ),
    }
    cache = getattr(trainer, "vision_cache", None)
    if cache is not None:
        result["vit_images_encoded"], result["vit_images_requested"] = cache.encoded, cache.requested
    stats = getattr(trainer, "prefix_stats", None)
    if stats is not None:
        result["prefix_stats"] = dict(stats)
    del trainer, model
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--tiny", action="store_true", help="CPU check with the tiny model (same code path)")
    mode.add_argument("--cpu-proxy", action="store_true", help="CPU: small model, real token shapes, ratio vs stock")
    p.add_argument("--size", choices=("7b", "3b"), default="7b")
    p.add_argument("--variants", help=f"comma list (GPU default {GPU_VARIANTS}; CPU default {CPU_VARIANTS})")
    p.add_argument("--prompts", type=int, default=4)
    p.add_argument("--grad-accum", type=int, default=1, help="micro-batches per step (the batch is split, not grown)")
    p.add_argument("--sizes-from", type=Path, help="a build folder: use its rows' image sizes")
    p.add_argument("--steps", type=int, help="measured steps per variant (default: 5 on GPU, 3 on CPU)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--rounds", type=int, default=1, help="run the variant list forward, then backward, ...")
    p.add_argument("--budget-s", type=float, help="after the first variant, start none that would end past this")
    p.add_argument("--profile", action="store_true", help="print a torch.profiler table of one extra, unmeasured step")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--record", action="store_true", help="append the table to the results file")
    p.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "RESULTS.md", help="results file for --record")
    args = p.parse_args(argv)
    gpu = not (args.tiny or args.cpu_proxy)
    args.steps = args.steps or (5 if gpu else 3)
    names = [v.strip() for v in (args.variants or (GPU_VARIANTS if gpu else CPU_VARIANTS)).split(",")]
    for name in names:
        parse_variant(name)
    t0 = time.perf_counter()

    import tempfile

    import datasets

    from curate.materialize.rows import FEATURES
    from tests.support.tiny_qwen import build_processor, build_tokenizer

    s = settings(args)
    if gpu:
        import torch

        if not torch.cuda.is_available():
            p.error("no CUDA device; use --cpu-proxy or --tiny on CPU")
    datasets.disable_progress_bars()
    tok = build_tokenizer(real_layout=gpu)
    processor = build_processor(tok, min_pixels=s["min_pixels"], max_pixels=s["max_pixels"])
    n_rows = s["prompts"] * (args.warmup + args.steps + 2)
    dataset = datasets.Dataset.from_list(make_rows(n_rows, s["sizes"]), features=FEATURES)
    env, fraction = environment(s), prompt_fraction(processor, dataset, s["completion"])
    out_dir = Path(os.environ["OUT"]) if gpu and os.environ.get("OUT") else None
    order = [n for k in range(args.rounds) for n in (names if k % 2 == 0 else names[::-1])]
    results, skipped, longest = [], [], 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for name in order:
            started = time.perf_counter()
            if args.budget_s and results and started - t0 + longest > args.budget_s:
                skipped.append(name)
                continue
            try:
                results.append(run_variant(name, args, s, tok, processor, dataset, Path(tmp)))
            except RuntimeError as exc:  # out of memory (torch.OutOfMemoryError is one): record it, go on
                if "out of memory" not in str(exc).lower():
                    raise
                results.append({"variant": name, "error": f"out of memory: {str(exc).splitlines()[0][:200]}"})
                gc.collect()
            longest = max(longest, time.perf_counter() - started)
            print(json.dumps(results[-1]), flush=True)
            save(args, out_dir, env, s, fraction, order, skipped, results)  # after every variant: partial runs count
    text = save(args, out_dir, env, s, fraction, order, skipped, results)
    print(text)
    if out_dir:
        (out_dir / "grpo_step.md").write_text(text + "\n")
    if args.record:
        cmd = "python benchmarks/grpo_step.py " + " ".join(argv if argv is not None else sys.argv[1:])
        with open(args.results, "a", encoding="utf-8") as fh:
            fh.write(f"\n{HEADING}\n\n`{cmd}`\n\n{text}\n")
    return results


if __name__ == "__main__":
    main()
