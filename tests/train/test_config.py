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
        ("num_generations: 3\n", r"must be divisible by num_generations \(3\)"),
        ("rewards:\n  weights: {ocr: 1}\n", r"t\.yaml:2: rewards\.weights: .*unknown task 'ocr'"),
        ("grpo_extra: {not_a_thing: 1}\n", r"grpo_extra\.not_a_thing is not a GRPOConfig argument"),
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
