"""The table and JSON of benchmarks/grpo_step.py (a GPU run writes them to ``$OUT``; this machine never sees its files)."""

from __future__ import annotations

import json
import math


def table(results: list[dict], env: dict, s: dict, args, prompt_fraction: float, skipped: list[str]) -> str:
    ok = [r for r in results if "error" not in r]
    stock = [r["s_per_step_mean"] for r in ok if r["variant"] == "stock"]
    base = sum(stock) / len(stock) if stock else (ok[0]["s_per_step_mean"] if ok else math.nan)
    lines = [
        f"{env['device']}; torch {env['torch']}, transformers {env['transformers']}, trl {env['trl']}; {env['date']}; "
        f"mode {s['mode']}; {s['prompts']} prompts x {s['generations']} generations, {s['completion']}-token "
        f"completions, prompt tokens {prompt_fraction:.0%} of each row; image sizes (query, crops) "
        f"{[tuple(x) for x in s['sizes'][:4]]}; pixels {s['min_pixels']}-{s['max_pixels']}; LoRA r{s['lora_r']}; "
        f"grad accum {s['grad_accum']}; {args.warmup} warm-up + {args.steps} measured steps per variant, "
        f"{args.rounds} round(s)" + (f"; skipped (time budget): {', '.join(skipped)}" if skipped else ""),
        "",
        (
            "| variant | s/step (mean) | s/step (min) | speed-up vs stock (mean) | peak GiB (allocated / reserved) "
            "| ViT images encoded/requested |"
        ),
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['variant']} | {r['error']} | | | | |")
            continue
        peak = "n/a (CPU)"
        if r["peak_gib"] is not None:
            fits = "fits 80 GB" if r["peak_reserved_gib"] < 78 else "over 80 GB"
            peak = f"{r['peak_gib']:.1f} / {r['peak_reserved_gib']:.1f} ({fits})"
        vit = f"{r['vit_images_encoded']}/{r['vit_images_requested']}" if "vit_images_encoded" in r else "all"
        lines.append(
            f"| {r['variant']} | {r['s_per_step_mean']:.2f} | {r['s_per_step_min']:.2f} | "
            f"{base / r['s_per_step_mean']:.2f}x | {peak} | {vit} |"
        )
    return "\n".join(lines)


def save(args, out_dir, env, s, fraction, order, skipped, results) -> str:
    text = table(results, env, s, args, fraction, skipped) if results else "no variant ran"
    payload = {
        "env": env,
        "settings": s,
        "prompt_fraction": fraction,
        "order": order,
        "skipped": skipped,
        "results": results,
        "table": text,
    }
    for path in filter(None, [args.json, out_dir and out_dir / "grpo_step.json"]):
        path.write_text(json.dumps(payload, indent=2, default=str))
    return text
