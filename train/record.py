"""What a training run records next to its weights: training_manifest.json and a model card."""

from __future__ import annotations

import math
from pathlib import Path

from curate.fileio import atomic_write_json
from curate.provenance import library_versions as _library_versions
from curate.provenance import toolkit_info as _toolkit_info

MANIFEST_NAME = "training_manifest.json"
LIBRARIES = ("torch", "torchvision", "transformers", "trl", "peft", "accelerate", "datasets", "huggingface_hub")


def library_versions() -> dict[str, str | None]:
    return _library_versions(LIBRARIES)


def toolkit_info() -> dict:
    return _toolkit_info(with_dirty=True)


def _jsonable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def write_json_atomic(path: Path, data: dict) -> None:
    """The training manifest: plain JSON (numbers, strings, lists, dicts; anything else as its str), sorted keys."""
    atomic_write_json(path, _jsonable(data), sort_keys=True, allow_nan=False)


def reward_summary(log_history: list[dict]) -> dict[str, float]:
    """The last logged mean of every ``rewards/<name>/mean`` key (NaN steps skipped)."""
    out: dict[str, float] = {}
    for entry in log_history:
        for key, value in entry.items():
            if key.startswith("rewards/") and key.endswith("/mean") and isinstance(value, (int, float)):
                if math.isfinite(value):
                    out[key.split("/")[1]] = float(value)
    return out


def render_card(manifest: dict) -> str:
    ds, model, cfg = manifest["dataset"], manifest["model"], manifest["config"]
    lines = ["---"]
    if model.get("id") and not Path(model["id"]).exists():
        lines.append(f"base_model: {model['id']}")
    if ds.get("repo_id"):
        lines += ["datasets:", f"- {ds['repo_id']}"]
    lines += [
        "library_name: peft" if cfg.get("use_lora") else "library_name: transformers",
        "tags:",
        "- repic",
        "- grpo",
        "- trl",
        "- personalized-image-captioning",
        "---",
        "",
    ]
    lines += [
        f"# RePIC GRPO post-training of {model.get('id')}",
        "",
        "Trained with `repic train` (RePIC Curate) using TRL's GRPOTrainer and RePIC's verifiable rewards "
        "(object consistency, visual localization, single- and multi-identity consistency).",
        "",
        "## Training data",
        "",
        "| field | value |",
        "|---|---|",
    ]
    where = ds.get("repo_id") or ds.get("local_dir") or ds.get("ref")
    for label, value in (
        ("dataset", where),
        ("revision (as given)", ds.get("revision")),
        ("commit", ds.get("commit")),
        ("pinned", ds.get("pinned")),
        ("build", f"{ds.get('name')} {ds.get('version')}"),
        ("recipe hash", ds.get("recipe_hash")),
        ("rows", manifest.get("rows")),
    ):
        lines.append(f"| {label} | `{value}` |")
    lines += ["", "## Model", "", "| field | value |", "|---|---|"]
    lines.append(f"| base model | `{model.get('id')}` |")
    lines.append(f"| base revision | `{model.get('revision')}` |")
    lines += ["", "## Settings", "", "| setting | value |", "|---|---|"]
    for key in (
        "trainer",
        "num_generations",
        "per_device_train_batch_size",
        "gradient_accumulation_steps",
        "beta",
        "loss_type",
        "learning_rate",
        "num_train_epochs",
        "max_steps",
        "max_completion_length",
        "bf16",
    ):
        lines.append(f"| {key} | `{cfg.get(key)}` |")
    batch = manifest.get("global_batch")
    if batch:
        lines.append(
            f"| global batch | {batch['prompts_per_step']:g} prompts x {batch['num_generations']} = "
            f"{batch['completions_per_step']} completions per optimizer step, {batch['optimizer_steps']} steps "
            f"({batch['processes']} process(es)) |"
        )
    lora = cfg.get("lora") or {}
    if cfg.get("use_lora"):
        lines.append(f"| LoRA | r={lora.get('r')}, alpha={lora.get('alpha')}, dropout={lora.get('dropout')} |")
        lines.append(f"| LoRA targets | `{lora.get('target_modules')}` |")
    result = manifest.get("result") or {}
    if result.get("rewards"):
        lines += ["", "## Last logged reward means", "", "| reward | mean |", "|---|---|"]
        lines += [f"| {k} | {v:.4f} |" for k, v in sorted(result["rewards"].items())]
    lines += ["", f"Full settings, library versions and the toolkit commit: `{MANIFEST_NAME}`.", ""]
    return "\n".join(lines)
