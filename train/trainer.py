"""Build and run TRL's GRPOTrainer for a RePIC mixture; record what was trained on.

Order of work: pin and check the dataset, check the model's processor, then load the
model and train. ``training_manifest.json`` is written before training starts (status
``running``) and rewritten when it ends, next to the weights and a model card.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from curate.errors import UserError
from train.batch import batch_plan, check_divisible
from train.config import VLLM_WARNING, TrainConfig
from train.data import data_files, load_training_data, vlt_rows_resized
from train.record import MANIFEST_NAME, library_versions, render_card, reward_summary, toolkit_info, write_json_atomic
from train.rewards import make_reward_funcs

log = logging.getLogger(__name__)
VISION_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>")


@dataclass
class ModelSource:
    ref: str
    path: str  # what from_pretrained gets: a local folder or a Hub id
    revision: str | None  # the Hub commit, None for a local folder
    processor: object = field(repr=False, default=None)

    def record(self) -> dict:
        return {"id": self.ref, "path": self.path, "revision": self.revision}


def launcher_processes() -> tuple[int, bool]:
    """(process count, whether this is the main process) as set by accelerate / torchrun (1, True alone)."""
    return int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0")) == 0


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip()


def resolve_model(ref: str) -> ModelSource:
    """Find the model (a folder, ``ORG/NAME`` or ``ORG/NAME@revision``) and load its processor; no weights yet."""
    from transformers import AutoConfig, AutoProcessor, ProcessorMixin

    folder = Path(ref).expanduser()
    if folder.is_dir():
        path, revision = str(folder.resolve()), None
        parts = Path(path).parts  # a Hub cache snapshot folder (.../snapshots/<commit>) names its commit
        snapshot = parts[-1] if len(parts) > 1 and parts[-2] == "snapshots" else ""
        if len(snapshot) == 40 and all(c in "0123456789abcdef" for c in snapshot):
            revision = snapshot
        if not (folder / "config.json").is_file():
            raise UserError(f"model {ref}: no config.json in the folder")
    else:
        repo, _, rev = ref.partition("@")
        if ref.startswith((".", "/", "~")) or repo.count("/") != 1:
            raise UserError(f"model {ref}: no such folder, and not a Hub model id ORG/NAME[@revision]")
        from huggingface_hub import HfApi

        try:
            revision = HfApi().model_info(repo, revision=rev or None).sha
        except Exception as exc:  # noqa: BLE001 - any Hub failure is the user's reference
            raise UserError(f"model {ref}: cannot resolve it on the Hub ({_first_line(exc)})") from None
        path = repo
    try:
        config = AutoConfig.from_pretrained(path, revision=revision)
    except Exception as exc:  # noqa: BLE001
        raise UserError(f"model {ref}: unreadable config ({_first_line(exc)})") from None
    if getattr(config, "vision_config", None) is None:
        raise UserError(f"model {ref}: not a vision-language model (its config has no vision_config)")
    try:
        processor = AutoProcessor.from_pretrained(path, revision=revision, padding_side="left", truncation_side="left")
    except Exception as exc:  # noqa: BLE001
        raise UserError(f"model {ref}: no usable processor ({_first_line(exc)})") from None
    if not isinstance(processor, ProcessorMixin) or getattr(processor, "image_processor", None) is None:
        raise UserError(f"model {ref}: no usable processor (found {type(processor).__name__}, no image processor)")
    if not getattr(processor, "chat_template", None) and not getattr(processor.tokenizer, "chat_template", None):
        raise UserError(f"model {ref}: the processor has no chat template")
    processor.tokenizer.padding_side = "left"
    return ModelSource(ref=ref, path=path, revision=revision, processor=processor)


def vision_token_ids(tokenizer) -> list[int]:
    ids = []
    for token in VISION_TOKENS:
        tid = tokenizer.convert_tokens_to_ids(token)
        if isinstance(tid, int) and tid != tokenizer.unk_token_id:
            ids.append(tid)
    return ids


def grpo_config(cfg: TrainConfig, output_dir: Path, model: ModelSource, reward_names: list[str]):
    """TRL's GRPOConfig from the training config: every setting whose name is a GRPOConfig field is passed
    as is (read from TRL's own dataclass, so a new TRL setting needs no code here), then ``grpo_extra``."""
    import dataclasses

    from trl import GRPOConfig

    weights = None
    if cfg.rewards.weights:
        weights = [cfg.rewards.weights.get(name, 1.0) for name in reward_names]
    generation_kwargs = dict(cfg.grpo_extra.get("generation_kwargs") or {})
    suppress = sorted(set(vision_token_ids(model.processor.tokenizer)) | set(cfg.suppress_tokens))
    generation_kwargs["suppress_tokens"] = sorted(set(generation_kwargs.get("suppress_tokens", [])) | set(suppress))
    model_init_kwargs = {"dtype": "bfloat16" if cfg.bf16 else "float32", "attn_implementation": cfg.attn_implementation}
    if model.revision:
        model_init_kwargs["revision"] = model.revision
    names = {f.name for f in dataclasses.fields(GRPOConfig) if f.init}
    kwargs = {name: getattr(cfg, name) for name in type(cfg).model_fields if name in names}
    kwargs.update(
        output_dir=str(output_dir),
        warmup_steps=int(cfg.warmup_steps) if cfg.warmup_steps >= 1 else cfg.warmup_steps,
        reward_weights=weights,
        remove_unused_columns=False,
        model_init_kwargs=model_init_kwargs,
        generation_kwargs=generation_kwargs,
    )
    kwargs.update({k: v for k, v in cfg.grpo_extra.items() if k != "generation_kwargs"})
    try:
        return GRPOConfig(**kwargs)
    except ValueError as exc:  # TrainingArguments/GRPOConfig validation of a combination of settings
        raise UserError(f"training settings: {str(exc).strip().splitlines()[0]}") from None


def check_device(cfg: TrainConfig) -> None:
    import torch

    if cfg.bf16 and not torch.cuda.is_available():
        raise UserError("bf16 needs a GPU and none is visible; to train on CPU add --no-bf16")


def lora_config(cfg: TrainConfig):
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.lora.r,
        lora_alpha=cfg.lora.alpha,
        lora_dropout=cfg.lora.dropout,
        target_modules=cfg.lora.target_modules,  # a string: PEFT full-matches it as a regex
        bias="none",
        task_type="CAUSAL_LM",
    )


def load_full_model(model: ModelSource, args):
    """Full fine-tuning: load the weights here so that the vision tower can be frozen."""
    import transformers
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model.path, revision=model.revision)
    cls = getattr(transformers, config.architectures[0])
    instance = cls.from_pretrained(model.path, **(args.model_init_kwargs or {}))
    visual = getattr(getattr(instance, "model", instance), "visual", None)
    if visual is None:
        raise UserError(f"model {model.ref}: no vision tower (model.visual) to freeze")
    visual.requires_grad_(False)
    return instance


def trainer_class(cfg: TrainConfig):
    if cfg.trainer == "fast":
        from train.fast import FastGRPOTrainer

        return FastGRPOTrainer
    if cfg.trainer == "shared_prefix":
        from train.prefix import SharedPrefixGRPOTrainer

        return SharedPrefixGRPOTrainer
    from trl import GRPOTrainer

    return GRPOTrainer


def _log_callback(path: Path):
    from transformers import TrainerCallback

    class JsonlLog(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and state.is_world_process_zero:
                with open(path, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps({"step": state.global_step, **logs}, default=str) + "\n")

    return JsonlLog()


def processor_frame(processor) -> tuple[int, int, int] | None:
    """(min_pixels, max_pixels, patch_size * merge_size) of a Qwen2-VL-style image processor."""
    ip = getattr(processor, "image_processor", None)
    size = getattr(ip, "size", None)
    get = (lambda k: size.get(k)) if isinstance(size, dict) else (lambda k: getattr(size, k, None))
    lo, hi = get("shortest_edge"), get("longest_edge")
    if not (lo and hi and getattr(ip, "patch_size", None) and getattr(ip, "merge_size", None)):
        return None
    return int(lo), int(hi), int(ip.patch_size * ip.merge_size)


def build_trainer(
    cfg: TrainConfig, data, model: ModelSource, output_dir: Path, extra_reward_funcs=(), callbacks=(), instance=None
):
    """The configured trainer; ``instance`` (a model object, e.g. random-init for benchmarks) replaces loading."""
    frame = processor_frame(model.processor)
    rewards = make_reward_funcs(**cfg.rewards.model_dump(exclude={"weights"}), vlt_frame=frame) + list(
        extra_reward_funcs
    )
    names = [getattr(f, "__name__", type(f).__name__) for f in rewards]
    args = grpo_config(cfg, output_dir, model, names)
    if instance is not None:
        args.model_init_kwargs = None  # already built by the caller
    else:  # full fine-tuning loads here to freeze the vision tower; TRL's reference model reuses the kwargs (revision)
        instance = model.path if cfg.use_lora else load_full_model(model, args)
    cls = trainer_class(cfg)
    if cfg.trainer != "stock":
        cls = functools.partial(cls, lm_checkpoint_every=cfg.lm_checkpoint_every)
    return cls(
        model=instance,
        reward_funcs=rewards,
        args=args,
        train_dataset=data.dataset,
        processing_class=model.processor,
        peft_config=lora_config(cfg) if cfg.use_lora else None,
        callbacks=[_log_callback(output_dir / "metrics.jsonl"), *callbacks],
    )


def run_training(
    dataset_ref: str,
    model_ref: str,
    cfg: TrainConfig,
    output_dir: str | Path,
    *,
    allow_unpinned: bool = False,
    extra_reward_funcs=(),
    callbacks=(),
    on_trainer=None,
) -> dict:
    """Train and return the final training manifest (also written to ``output_dir``)."""
    output_dir = Path(output_dir)
    previous = output_dir / MANIFEST_NAME
    if previous.is_file() and json.loads(previous.read_text()).get("status") == "complete":
        raise UserError(f"{output_dir} already holds a finished training run; choose another --output")
    processes, main = launcher_processes()
    check_divisible(processes, cfg.per_device_train_batch_size, cfg.gradient_accumulation_steps, cfg.num_generations)
    data = load_training_data(dataset_ref, allow_unpinned=allow_unpinned, reasoning=cfg.reasoning)
    model = resolve_model(model_ref)
    check_device(cfg)
    if cfg.use_vllm:
        log.warning(VLLM_WARNING)
    frame = processor_frame(model.processor)
    resized = vlt_rows_resized(data_files(data.source.local_dir), frame) if frame else 0
    if resized:
        log.warning(
            "%d vlt query image(s) are not in the processor's frame %s; predicted boxes are mapped back "
            "to the stored frame before IoU (build with a matching model_frame to avoid it)",
            resized,
            frame,
        )
    output_dir.mkdir(parents=True, exist_ok=True)
    write = functools.partial(write_json_atomic, output_dir / MANIFEST_NAME) if main else (lambda data: None)
    manifest = {
        "format": "repic-train/1",
        "status": "running",
        "dataset": data.source.record(),
        "rows": data.rows,
        "processor_frame": {"min_pixels": frame[0], "max_pixels": frame[1], "factor": frame[2]} if frame else None,
        "vlt_queries_resized_by_processor": resized,
        "model": model.record(),
        "config": cfg.model_dump(mode="json"),
        "libraries": library_versions(),
        "toolkit": toolkit_info(),
    }
    write(manifest)
    trainer = build_trainer(cfg, data, model, output_dir, extra_reward_funcs, callbacks)
    plan = batch_plan(trainer.args, data.rows)
    if main:
        print(plan.describe(), flush=True)
        if warning := plan.warning(cfg.global_batch_intended):
            log.warning(warning)
    manifest["global_batch"] = plan.record()
    manifest["grpo_config"] = {k: v for k, v in trainer.args.to_dict().items() if not k.startswith("_")}
    manifest["reward_functions"] = list(trainer.reward_func_names)
    write(manifest)
    if on_trainer is not None:
        on_trainer(trainer)
    result = trainer.train()
    trainer.save_model(str(output_dir))
    manifest["status"] = "complete"
    manifest["result"] = {
        "global_step": trainer.state.global_step,
        "train_loss": result.training_loss,
        "rewards": reward_summary(trainer.state.log_history),
    }
    write(manifest)
    if main:
        (output_dir / "README.md").write_text(render_card(manifest), encoding="utf-8")
    return manifest
