"""benchmarks/grpo_step.py --tiny runs the GPU benchmark's code path on CPU."""

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "grpo_step.py"


def _load():
    spec = importlib.util.spec_from_file_location("grpo_step_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_mode_runs_every_trainer_in_alternating_rounds_and_records(tmp_path, capsys):
    bench = _load()
    results_md = tmp_path / "RESULTS.md"
    results_md.write_text("# Benchmarks\n")
    out = tmp_path / "r.json"
    variants = "stock,fast,shared_prefix:ckpt0:mb2"
    results = bench.main(
        [
            "--tiny",
            "--steps",
            "1",
            "--rounds",
            "2",
            "--variants",
            variants,
            "--json",
            str(out),
            "--record",
            "--results",
            str(results_md),
        ]
    )
    names = ["stock", "fast", "shared_prefix:ckpt0:mb2"]
    assert [r["variant"] for r in results] == names + names[::-1]  # the second round runs backward
    for r in results:
        assert r["steps_measured"] == 1 and r["s_per_step_mean"] > 0 and r["loss_finite"]
        assert r["reward_keys"] == [f"rewards/{t}/mean" for t in ("ict_multi", "ict_single", "oct", "vlt")]
    fast, shared = results[1], results[2]
    assert 0 < fast["vit_images_encoded"] < fast["vit_images_requested"]
    stats = shared["prefix_stats"]
    assert stats["fallbacks"] == 0 and stats["packed_rows"] < stats["rows"] and stats["tokens"] < stats["stock_tokens"]
    saved = json.loads(out.read_text())
    assert saved["env"]["trl"] == "1.16.0" and saved["settings"]["device"] == "cpu" and saved["skipped"] == []
    assert 0.5 < saved["prompt_fraction"] < 1
    table = capsys.readouterr().out
    assert "| stock |" in table and "| fast |" in table and "| shared_prefix:ckpt0:mb2 |" in table
    recorded = results_md.read_text()
    assert recorded.startswith("# Benchmarks\n") and bench.HEADING in recorded and "| fast |" in recorded


def test_variant_names_and_time_budget(tmp_path):
    bench = _load()
    assert bench.parse_variant("shared_prefix:ckpt0:mb2") == ("shared_prefix", 0, 2)
    assert bench.parse_variant("stock") == ("stock", 1, 1)
    out = tmp_path / "r.json"
    # a budget shorter than the first variant: the first one runs, the rest are skipped and said to be
    results = bench.main(
        ["--tiny", "--steps", "1", "--variants", "stock,fast", "--budget-s", "0.001", "--json", str(out)]
    )
    assert [r["variant"] for r in results] == ["stock"]
    assert json.loads(out.read_text())["skipped"] == ["fast"]


def test_real_architecture_config_matches_the_released_7b():
    bench = _load()
    from tests.support.tiny_qwen import build_tokenizer

    cfg = bench.real_config("7b", build_tokenizer(real_layout=True))
    # the CPU proxy keeps the real token layout (merge 2 x patch 14) on a small model
    proxy = bench.proxy_config(build_tokenizer())
    assert (proxy.vision_config.patch_size, proxy.vision_config.spatial_merge_size) == (14, 2)
    assert proxy.vision_config.out_hidden_size == proxy.text_config.hidden_size == 256
    text, vision = cfg.text_config, cfg.vision_config
    assert (text.hidden_size, text.intermediate_size, text.num_hidden_layers) == (3584, 18944, 28)
    assert (text.num_attention_heads, text.num_key_value_heads, text.vocab_size) == (28, 4, 152064)
    assert (vision.depth, vision.hidden_size, vision.intermediate_size, vision.out_hidden_size) == (
        32,
        1280,
        3420,
        3584,
    )
    assert cfg.image_token_id == 151655 and cfg.video_token_id == 151656 and cfg.vision_start_token_id == 151652
    assert sum(text.rope_parameters["mrope_section"]) == text.hidden_size // text.num_attention_heads // 2
    # parameter counts of the released checkpoint and of the paper's LoRA on it
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2_5_VLForConditionalGeneration

    from train.config import LANGUAGE_MODEL_PROJECTIONS

    with torch.device("meta"):
        model = Qwen2_5_VLForConditionalGeneration._from_config(cfg, dtype=torch.bfloat16)
    assert sum(p.numel() for p in model.parameters()) == 8_292_166_656
    peft_model = get_peft_model(model, LoraConfig(r=64, lora_alpha=128, target_modules=LANGUAGE_MODEL_PROJECTIONS))
    trainable = [(n, p.numel()) for n, p in peft_model.named_parameters() if p.requires_grad]
    assert sum(k for _, k in trainable) == 161_480_704 and not any("visual" in n for n, _ in trainable)
