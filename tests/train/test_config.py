import re
from pathlib import Path

import pytest

from curate.errors import UserError
from train.config import LANGUAGE_MODEL_PROJECTIONS, TrainConfig, load_config

SHIPPED = Path(__file__).resolve().parents[2] / "train" / "configs" / "repic.yaml"


def test_defaults_are_the_papers():
    cfg = load_config()
    assert (cfg.lora.r, cfg.lora.alpha, cfg.lora.dropout) == (64, 128, 0.05)
    assert cfg.num_generations == 8 and cfg.beta == 0.04 and cfg.loss_type == "grpo"
    assert cfg.learning_rate == 1e-5 and cfg.num_train_epochs == 2 and cfg.bf16 and cfg.gradient_checkpointing
    assert not cfg.reasoning and not cfg.use_vllm and not cfg.use_bias_correction_kl
    assert (cfg.scale_rewards, cfg.epsilon, cfg.temperature, cfg.max_completion_length) == ("group", 0.2, 1.0, 256)


def test_shipped_yaml_equals_defaults():
    assert load_config(SHIPPED) == TrainConfig()


def test_lora_regex_targets_language_model_only():
    pat = re.compile(LANGUAGE_MODEL_PROJECTIONS)
    assert pat.fullmatch("model.language_model.layers.3.self_attn.q_proj")
    assert pat.fullmatch("base_model.model.model.language_model.layers.27.mlp.down_proj")
    assert not pat.fullmatch("model.visual.blocks.0.mlp.gate_proj")
    assert not pat.fullmatch("model.visual.merger.mlp.0")
    assert not pat.fullmatch("lm_head")


def test_yaml_and_overrides(tmp_path):
    f = tmp_path / "t.yaml"
    f.write_text("learning_rate: 2.0e-5\nlora:\n  r: 16\n")
    cfg = load_config(f, {"lora.alpha": 32, "max_steps": 3, "beta": None})
    assert (cfg.learning_rate, cfg.lora.r, cfg.lora.alpha, cfg.max_steps, cfg.beta) == (2e-5, 16, 32, 3, 0.04)


@pytest.mark.parametrize(
    "text,message",
    [
        ("lora:\n  r: many\n", r"t\.yaml:2: lora\.r: .*integer"),
        ("learning_rate: 1e-5\nnum_generation: 4\n", r"t\.yaml:2: num_generation: unknown key"),
        ("loss_type: ppo\n", r"t\.yaml:1: loss_type: Input should be 'grpo'"),
        ("lora:\n  target_modules: '.*(q|gate)_proj'\n", r"t\.yaml:2: lora\.target_modules: .*vision tower"),
        ("num_generations: 1\n", r"t\.yaml:1: num_generations: .*greater than or equal to 2"),
        ("rewards:\n  weights: {ocr: 1}\n", r"t\.yaml:2: rewards\.weights: .*unknown task 'ocr'"),
        ("grpo_extra: {not_a_thing: 1}\n", r"grpo_extra\.not_a_thing is not a GRPOConfig argument"),
        ("rewards:\n  vlt_iou: area\n", r"t\.yaml:2: rewards\.vlt_iou: Input should be 'inclusive' or 'continuous'"),
        ("top_k: 3\ngrpo_extra: {top_k: 4}\n", r"top_k: set both as a top-level key and as grpo_extra\.top_k"),
        ("- a\n- b\n", r"YAML mapping"),
        ("lora: [\n", r"t\.yaml:\d+: not valid YAML"),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path, text, message):
    f = tmp_path / "t.yaml"
    f.write_text(text)
    with pytest.raises(UserError, match=message) as info:
        load_config(f)
    assert "\n" not in str(info.value)


def test_bad_override_is_named_as_override():
    with pytest.raises(UserError, match=r"^override learning_rate: .*greater than 0"):
        load_config(None, {"learning_rate": -1.0})


def test_missing_file():
    with pytest.raises(UserError, match="training config not found"):
        load_config("/nonexistent/train.yaml")


def test_vllm_warns():
    with pytest.warns(UserWarning, match="trl#6294"):
        assert load_config(None, {"use_vllm": True}).use_vllm


def test_accelerate_zero2_config_parses_with_the_documented_command():
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.commands.launch import launch_command_parser

    path = SHIPPED.parent / "accelerate_zero2_8gpu.yaml"
    cfg = load_config_from_file(str(path))
    assert str(cfg.distributed_type).endswith("DEEPSPEED") and cfg.num_processes == 8
    assert cfg.deepspeed_config["zero_stage"] == 2 and str(cfg.mixed_precision) == "bf16"
    args = launch_command_parser().parse_args(
        ["--config_file", str(path), "-m", "curate.cli", "train", "--dataset", "org/name@v1.0.0", "--model", "m"]
    )
    assert args.module and args.training_script == "curate.cli"
    assert args.training_script_args == ["train", "--dataset", "org/name@v1.0.0", "--model", "m"]


def test_import_and_configs_without_trl_settings_do_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys; from train.config import load_config; "
        "cfg = load_config(None, {'lora.r': 8, 'rewards.vlt_iou': 'continuous'}); "
        "assert cfg.lora.r == 8; print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'trl')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_the_global_batch_divisibility_is_checked_with_the_process_count():
    from train.batch import check_divisible

    check_divisible(8, 1, 2, 8)  # the 8-GPU recipe: 16 completions = 2 groups
    with pytest.raises(UserError, match=r"1 process\(es\) x per_device_train_batch_size 1 .* = 2 completions"):
        check_divisible(1, 1, 2, 8)


def test_eight_gpu_config_is_the_papers_global_batch():
    from train.batch import BatchPlan

    cfg = load_config(SHIPPED.parent / "repic_8gpu.yaml")
    assert (cfg.per_device_train_batch_size, cfg.gradient_accumulation_steps, cfg.num_generations) == (1, 2, 8)
    assert cfg.model_copy(update={"per_device_train_batch_size": 8}) == TrainConfig()  # nothing else differs

    def plan(processes, c):
        return BatchPlan(
            processes,
            c.per_device_train_batch_size,
            c.gradient_accumulation_steps,
            c.num_generations,
            c.gradient_accumulation_steps,
            1,
            2000,
            c.num_train_epochs,
            c.max_steps,
        )

    for p in (plan(8, cfg), plan(1, TrainConfig())):  # 8 GPUs with repic_8gpu.yaml; 1 GPU with the defaults
        assert (p.completions_per_step, p.prompts_per_step, p.optimizer_steps) == (16, 2, 2000)
        assert p.warning(intended=False) is None
    wrong = plan(8, TrainConfig())  # the defaults on 8 GPUs: 8x the paper's batch, 8x fewer steps
    assert (wrong.completions_per_step, wrong.prompts_per_step, wrong.optimizer_steps) == (128, 16, 250)
    assert "16 prompts per optimizer step, the paper used 2" in wrong.warning(intended=False)
    assert wrong.warning(intended=True) is None


def test_any_grpo_config_field_reaches_trl_from_yaml_and_set(tmp_path, tiny_model):
    """Fields this project never names (here top_k, mask_truncated_completions, torch_empty_cache_steps) arrive."""
    import dataclasses

    from trl import GRPOConfig

    from curate.cli.train import parse_set
    from train.trainer import grpo_config, resolve_model

    f = tmp_path / "t.yaml"
    f.write_text("top_k: 7\nmask_truncated_completions: true\nlearning_rate: 3.0e-5\n")
    cfg = load_config(f, parse_set(["torch_empty_cache_steps=5", "bf16=false"]))
    assert cfg.grpo_extra == {"top_k": 7, "mask_truncated_completions": True, "torch_empty_cache_steps": 5}
    args = grpo_config(cfg, tmp_path / "out", resolve_model(str(tiny_model)), ["oct"])
    assert (args.top_k, args.mask_truncated_completions, args.torch_empty_cache_steps) == (7, True, 5)
    # every repic setting named like a GRPOConfig field is passed as is
    shared = [f.name for f in dataclasses.fields(GRPOConfig) if f.name in TrainConfig.model_fields]
    assert len(shared) > 20
    normalized = {"warmup_steps": int(cfg.warmup_steps), "report_to": []}  # TrainingArguments reads ["none"] as []
    for name in shared:
        assert getattr(args, name) == normalized.get(name, getattr(cfg, name)), name
    with pytest.raises(UserError, match=r"t\.yaml:1: top_kk: unknown key"):
        f.write_text("top_kk: 7\n")
        load_config(f)
