"""The training configuration: the RePIC paper's settings as defaults, YAML + flag overrides.

Defaults follow the paper and its official LoRA script (``RePIC_training_lora.sh``) mapped to
TRL 1.16 names. Two forced deviations: no adapter on ``lm_head`` (TRL refuses one) and the
per-GPU batch counts completions, not prompts (see docs/training.md).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from curate.errors import UserError
from curate.recipe.yamlfile import dotted as _dotted
from curate.recipe.yamlfile import first_problem, load_mapping
from curate.recipe.yamlfile import line_of as _line_of

# PEFT full-matches a string target: adapters on the LANGUAGE model's attention and MLP
# projections only. The vision tower's MLP reuses gate/up/down_proj, so a name list would adapt it too.
LANGUAGE_MODEL_PROJECTIONS = r".*language_model\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)"

VLLM_WARNING = (
    "use_vllm=True: TRL 1.16 sends processor-expanded image tokens to vLLM, so image tokens are expanded twice and "
    "rollouts of vision-language models are silently corrupted (huggingface/trl#6294); keep use_vllm false"
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoraSettings(_Model):
    r: int = Field(64, gt=0)
    alpha: float = Field(128, gt=0)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: str = LANGUAGE_MODEL_PROJECTIONS

    @field_validator("target_modules")
    @classmethod
    def _not_vision(cls, v: str) -> str:
        import re

        try:
            pattern = re.compile(v)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        if pattern.fullmatch("model.visual.blocks.0.mlp.gate_proj"):
            raise ValueError(
                "the pattern also matches the vision tower (model.visual...); the vision tower stays frozen"
            )
        if pattern.fullmatch("lm_head"):
            raise ValueError("TRL 1.16 refuses a LoRA adapter on lm_head")
        return v


class RewardSettings(_Model):
    vlt_iou_threshold: float = Field(0.5, gt=0, le=1)
    vlt_box_numbers: Literal["integers", "decimals"] = "integers"  # official: [int, int, int, int] only
    vlt_iou: Literal["inclusive", "continuous"] = "inclusive"  # official: inclusive pixel coordinates
    ict_single_min_chars: int = Field(100, ge=0)
    ict_single_zero_on_closing_tag: bool = True
    ict_multi_min_chars: int = Field(100, ge=0)
    weights: dict[str, float] | None = None  # per task; missing tasks weigh 1.0

    @field_validator("weights")
    @classmethod
    def _known_tasks(cls, v):
        from curate.materialize.rows import TASKS

        for key in v or {}:
            if key not in TASKS:
                raise ValueError(f"unknown task {key!r} (tasks: {', '.join(TASKS)})")
        return v


class TrainConfig(_Model):
    # model
    use_lora: bool = True  # False: full fine-tuning of the language model (vision tower still frozen)
    lora: LoraSettings = LoraSettings()
    freeze_vision: Literal[True] = True
    attn_implementation: str = "sdpa"
    # "fast": train.fast.FastGRPOTrainer; "shared_prefix": the same plus one prompt pass per group (see docs)
    trainer: Literal["stock", "fast", "shared_prefix"] = "stock"
    lm_checkpoint_every: int = Field(1, ge=1)  # fast trainers only: checkpoint every n-th LM layer (1 = all)
    # GRPO
    num_generations: int = Field(8, ge=2)
    per_device_train_batch_size: int = Field(8, ge=1)  # completions per GPU and micro-step
    gradient_accumulation_steps: int = Field(2, ge=1)
    global_batch_intended: bool = False  # true: prompts per optimizer step differ from the paper's 2 on purpose
    beta: float = Field(0.04, ge=0)
    loss_type: Literal["grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo"] = "grpo"
    scale_rewards: Literal["group", "batch", "none"] = "group"
    use_bias_correction_kl: bool = False
    epsilon: float = Field(0.2, gt=0)
    num_iterations: int = Field(1, ge=1)
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_completion_length: int = Field(256, ge=1)
    reasoning: bool = False  # rows built with reasoning templates (+think/+observe) are refused when off
    use_vllm: bool = False
    # optimisation
    learning_rate: float = Field(1e-5, gt=0)
    num_train_epochs: float = Field(2, gt=0)
    max_steps: int = -1
    warmup_steps: float = Field(0, ge=0)  # an integer = steps, a float in [0, 1) = a fraction of all steps
    lr_scheduler_type: str = "linear"
    bf16: bool = True
    gradient_checkpointing: bool = True
    seed: int = 42
    # bookkeeping
    logging_steps: int = Field(1, ge=1)
    save_strategy: Literal["no", "steps", "epoch"] = "epoch"
    save_steps: int = Field(500, ge=1)
    report_to: list[str] = ["none"]
    log_completions: bool = False
    suppress_tokens: list[int] = []  # extra token ids never to sample (the image token is always suppressed)
    rewards: RewardSettings = RewardSettings()
    # any other GRPOConfig argument, passed through unchanged (a top-level key that names one lands here)
    grpo_extra: dict[str, Any] = {}

    @model_validator(mode="after")
    def _checks(self):
        # the divisibility of the global batch by num_generations needs the process count: train.batch checks it
        if self.grpo_extra:
            from trl import GRPOConfig

            known = set(GRPOConfig.__dataclass_fields__)
            for key in self.grpo_extra:
                if key not in known:
                    raise ValueError(f"grpo_extra.{key} is not a GRPOConfig argument")
                if key in type(self).model_fields:
                    raise ValueError(f"grpo_extra.{key}: set it as the top-level key {key!r}")
        return self


def _one_line(exc: ValidationError, where) -> UserError:
    loc, msg = first_problem(exc)
    return UserError(f"{where(loc)}{_dotted(loc)}: {msg}")


def _set_dotted(data: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise UserError(f"override {key}: {part} is not a section")
    node[parts[-1]] = value


def grpo_argument_names() -> set[str]:
    """Every argument of TRL's GRPOConfig (imports TRL, hence torch: call it only when needed)."""
    import dataclasses

    from trl import GRPOConfig

    return {f.name for f in dataclasses.fields(GRPOConfig) if f.init}


def _route_grpo_arguments(data: dict) -> None:
    """Top-level keys that are not repic settings but GRPOConfig arguments move into ``grpo_extra``.

    So a TRL setting this file does not name works from the YAML and from ``--set`` as is. TRL is
    imported only when such a key is present; other unknown keys stay put and are refused as unknown.
    """
    unknown = [k for k in data if k not in TrainConfig.model_fields]
    if not unknown:
        return
    known = grpo_argument_names()
    extra = data.get("grpo_extra")
    for key in unknown:
        if key in known and (extra is None or isinstance(extra, dict)):
            extra = {} if extra is None else extra
            if key in extra:
                raise UserError(f"{key}: set both as a top-level key and as grpo_extra.{key}; keep one")
            extra[key] = data.pop(key)
    if extra is not None:
        data["grpo_extra"] = extra


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Defaults <- YAML file <- overrides (dotted keys such as ``lora.r``; ``None`` values are ignored).

    Any problem raises :class:`UserError` as ``FILE:LINE: key.path: problem`` (or ``override key.path: ...``).
    """
    data: dict = {}
    lines: dict = {}
    if path is not None:
        path = Path(path)
        data, lines = load_mapping(path, "training config")
    from_flags = set()
    for key, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(data, key, value)
            from_flags.add(tuple(key.split(".")))

    def where(loc: tuple) -> str:
        if any(loc[: len(k)] == k for k in from_flags):
            return "override "
        line = _line_of(lines, loc) if path is not None else None
        return f"{path}:{line}: " if line else (f"{path}: " if path is not None else "")

    _route_grpo_arguments(data)
    try:
        cfg = TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise _one_line(exc, where) from None
    if cfg.use_vllm:
        warnings.warn(VLLM_WARNING, UserWarning, stacklevel=2)
    return cfg
