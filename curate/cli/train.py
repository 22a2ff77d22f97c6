"""``repic train``: GRPO post-training of Qwen2.5-VL on a pinned RePIC mixture."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from curate.errors import UserError

# flag name -> config key; every flag defaults to None (= keep the config file's / the paper's value)
_FLAGS = {
    "max_steps": "max_steps",
    "num_train_epochs": "num_train_epochs",
    "learning_rate": "learning_rate",
    "num_generations": "num_generations",
    "per_device_train_batch_size": "per_device_train_batch_size",
    "gradient_accumulation_steps": "gradient_accumulation_steps",
    "max_completion_length": "max_completion_length",
    "beta": "beta",
    "temperature": "temperature",
    "seed": "seed",
    "bf16": "bf16",
    "gradient_checkpointing": "gradient_checkpointing",
    "trainer": "trainer",
    "lora_r": "lora.r",
    "lora_alpha": "lora.alpha",
    "save_strategy": "save_strategy",
}


def parse_set(items: list[str]) -> dict:
    """``--set lora.dropout=0.1`` items -> {"lora.dropout": 0.1} (values are read as YAML scalars)."""
    import yaml

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set {item!r}: expected KEY=VALUE, e.g. --set lora.dropout=0.1")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise UserError(f"--set {item!r}: the value is not a YAML scalar") from None
    return out


def train(
    dataset: str = typer.Option(..., "--dataset", "-d", help="ORG/NAME@vX.Y.Z, ORG/NAME@<commit> or a build folder."),
    model: str = typer.Option(..., "--model", "-m", help="Model folder or Hub id ORG/NAME[@revision] (Qwen2.5-VL)."),
    config: Optional[Path] = typer.Option(
        None, "--config", "-c", help="Training config YAML (default: the paper's settings)."
    ),
    output: Path = typer.Option(
        Path("runs/repic-grpo"), "--output", "-o", help="Output folder for adapters, manifest, card."
    ),
    allow_unpinned: bool = typer.Option(
        False, "--allow-unpinned", help="Accept a branch or no revision (the commit is still recorded)."
    ),
    max_steps: Optional[int] = typer.Option(None, help="Stop after this many optimizer steps."),
    num_train_epochs: Optional[float] = typer.Option(None, help="Epochs (paper: 2)."),
    learning_rate: Optional[float] = typer.Option(None, help="Learning rate (paper: 1e-5)."),
    num_generations: Optional[int] = typer.Option(None, help="Completions per prompt G (paper: 8)."),
    per_device_train_batch_size: Optional[int] = typer.Option(None, help="Completions per GPU and micro-step."),
    gradient_accumulation_steps: Optional[int] = typer.Option(None, help="Micro-steps per optimizer step."),
    max_completion_length: Optional[int] = typer.Option(None, help="Completion token limit (paper: 256)."),
    beta: Optional[float] = typer.Option(None, help="KL coefficient (paper: 0.04)."),
    temperature: Optional[float] = typer.Option(None, help="Sampling temperature (paper: 1.0)."),
    seed: Optional[int] = typer.Option(None, help="Random seed."),
    bf16: Optional[bool] = typer.Option(
        None, "--bf16/--no-bf16", help="bf16 weights and compute (paper: on; off on CPU)."
    ),
    gradient_checkpointing: Optional[bool] = typer.Option(None, "--gradient-checkpointing/--no-gradient-checkpointing"),
    trainer: Optional[str] = typer.Option(None, help="stock (TRL GRPOTrainer) or fast (train.fast.FastGRPOTrainer)."),
    lora_r: Optional[int] = typer.Option(None, help="LoRA rank (paper: 64)."),
    lora_alpha: Optional[float] = typer.Option(None, help="LoRA alpha (paper: 128)."),
    save_strategy: Optional[str] = typer.Option(None, help="no, steps or epoch."),
    set_: list[str] = typer.Option([], "--set", help="Any config key: --set lora.dropout=0.1 (repeatable)."),
) -> None:
    """Post-train a Qwen2.5-VL model with GRPO on a pinned RePIC mixture (the paper's settings by default)."""
    from rich.console import Console

    from train.config import load_config

    values = locals()
    overrides = {key: values[flag] for flag, key in _FLAGS.items()}
    overrides.update(parse_set(set_))
    cfg = load_config(config, overrides)

    from train.trainer import launcher_processes, run_training  # heavy imports only once the input is valid

    manifest = run_training(dataset, model, cfg, output, allow_unpinned=allow_unpinned)
    if not launcher_processes()[1]:
        return  # under a multi-process launcher only the main process reports
    console = Console(highlight=False)
    ds = manifest["dataset"]
    where = f"{ds['repo_id']}@{ds['commit']}" if ds.get("repo_id") else ds.get("local_dir")
    console.print(f"[bold]trained[/] {manifest['result']['global_step']} steps on {where}")
    for name, value in sorted(manifest["result"]["rewards"].items()):
        console.print(f"  rewards/{name}/mean (last) = {value:.4f}")
    console.print(f"[bold]output[/] {output} (training_manifest.json, README.md)")


def register(app: typer.Typer) -> None:
    app.command("train")(train)
