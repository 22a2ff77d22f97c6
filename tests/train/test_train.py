"""End-to-end GRPO runs of the tiny offline Qwen2.5-VL on tiny RePIC builds (CPU, a few seconds each)."""

import json
import math
import re

import pytest
import torch

from curate.cli import main
from curate.errors import UserError
from tests.support.trainbuilds import SMALL, completion_checksum, lora_b
from train.config import load_config
from train.trainer import run_training

TASK_KEYS = [f"rewards/{t}/mean" for t in ("oct", "vlt", "ict_single", "ict_multi")]
SMALL_FLAGS = [
    "--no-bf16",
    "--num-generations",
    "2",
    "--per-device-train-batch-size",
    "2",
    "--gradient-accumulation-steps",
    "1",
    "--max-completion-length",
    "8",
    "--save-strategy",
    "no",
]


def test_two_steps_on_a_local_build_update_lora_and_log_per_task_rewards(tiny_model, tiny_build, tmp_path):
    seen = {}
    out = tmp_path / "run"
    manifest = run_training(
        str(tiny_build),
        str(tiny_model),
        load_config(None, SMALL),
        out,
        extra_reward_funcs=[completion_checksum],
        on_trainer=lambda tr: seen.update(trainer=tr, before=lora_b(tr.model)),
    )
    trainer = seen["trainer"]
    assert trainer.state.global_step == 2 and manifest["status"] == "complete"
    # only the language model is adapted
    assert seen["before"] and all("language_model" in n for n in seen["before"])
    trainable = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
    assert trainable and not any("visual" in n for n in trainable)
    after = lora_b(trainer.model)
    moved = [n for n in after if not bool((after[n] == seen["before"][n]).all())]
    assert moved, "no LoRA B matrix changed"
    # per-task reward means on every step
    steps = [e for e in trainer.state.log_history if "loss" in e]
    assert len(steps) == 2
    for entry in steps:
        assert all(k in entry for k in TASK_KEYS) and "rewards/completion_checksum/mean" in entry
        assert any(isinstance(entry[k], float) and math.isfinite(entry[k]) for k in TASK_KEYS)
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [e["step"] for e in logged if "loss" in e] == [1, 2]
    # the record
    rec = json.loads((out / "training_manifest.json").read_text())
    assert rec["dataset"]["kind"] == "local" and rec["dataset"]["recipe_hash"] == "ab" * 32
    assert rec["dataset"]["local_dir"] == str(tiny_build.resolve())
    assert rec["model"]["path"] == str(tiny_model.resolve())
    assert rec["config"]["lora"]["r"] == 64 and rec["config"]["num_generations"] == 2
    assert rec["vlt_queries_resized_by_processor"] == 0  # the tiny build's query is in the model's frame
    assert rec["grpo_config"]["beta"] == 0.04 and rec["grpo_config"]["loss_type"] == "grpo"
    assert rec["reward_functions"] == ["oct", "vlt", "ict_single", "ict_multi", "completion_checksum"]
    assert rec["libraries"]["trl"] == "1.16.0" and rec["libraries"]["transformers"] == "5.17.0"
    assert re.fullmatch(r"[0-9a-f]{40}", rec["toolkit"]["git_commit"])
    assert rec["result"]["global_step"] == 2
    assert (out / "adapter_model.safetensors").is_file()
    card = (out / "README.md").read_text()
    assert "ab" * 32 in card and "r=64" in card
    with pytest.raises(UserError, match="already holds a finished training run"):
        run_training(str(tiny_build), str(tiny_model), load_config(None, SMALL), out)


def _publish(tmp_path, repo="tester/repic-tiny"):
    from huggingface_hub import HfApi

    from tests.support.trainbuilds import write_build

    api = HfApi()
    api.create_repo(repo, repo_type="dataset")
    api.upload_folder(folder_path=str(write_build(tmp_path / "pub")), repo_id=repo, repo_type="dataset")
    api.create_tag(repo, tag="v1.0.0", repo_type="dataset")
    return repo, api.dataset_info(repo, revision="v1.0.0").sha


def test_cli_trains_from_a_pinned_hub_version(hub, tiny_model, tmp_path, capsys):
    repo, sha = _publish(tmp_path)
    out = tmp_path / "run"
    rc = main(
        [
            "train",
            "--dataset",
            f"{repo}@v1.0.0",
            "--model",
            str(tiny_model),
            "--output",
            str(out),
            "--max-steps",
            "2",
            *SMALL_FLAGS,
        ]
    )
    assert rc == 0, capsys.readouterr()
    rec = json.loads((out / "training_manifest.json").read_text())
    assert rec["dataset"]["kind"] == "hub" and rec["dataset"]["repo_id"] == repo
    assert rec["dataset"]["revision"] == "v1.0.0" and rec["dataset"]["commit"] == sha and rec["dataset"]["pinned"]
    assert rec["result"]["global_step"] == 2
    card = (out / "README.md").read_text()
    assert f"- {repo}" in card and sha in card
    assert f"{repo}@{sha}" in capsys.readouterr().out


def test_unpinned_hub_reference_is_refused_before_the_model_is_touched(hub, tmp_path, capsys):
    repo, sha = _publish(tmp_path)
    for ref in (repo, f"{repo}@main"):
        rc = main(
            ["train", "--dataset", ref, "--model", str(tmp_path / "no-such-model"), "--output", str(tmp_path / "o")]
        )
        err = capsys.readouterr().err
        assert rc == 2 and "moving reference" in err and sha in err
        assert not (tmp_path / "o").exists()


def test_allow_unpinned_still_records_the_commit(hub, tmp_path):
    from train.data import load_training_data

    repo, sha = _publish(tmp_path)
    data = load_training_data(f"{repo}@main", allow_unpinned=True)
    assert data.source.record()["commit"] == sha and data.source.record()["pinned"] is False


def test_model_without_processor_is_refused(tiny_model, tiny_build, tmp_path, capsys):
    import shutil

    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors", "generation_config.json"):
        shutil.copy(tiny_model / name, bare / name)
    rc = main(["train", "--dataset", str(tiny_build), "--model", str(bare), "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert rc == 2 and len(errors) == 1 and "no usable processor" in errors[0]


def test_bad_flags_and_config_are_one_line_errors(tiny_build, tmp_path, capsys):
    rc = main(["train", "--dataset", str(tiny_build), "--model", "x/y", "--num-generations", "3"])
    assert rc == 2 and "16 completions per step, not a multiple of num_generations (3)" in capsys.readouterr().err
    rc = main(["train", "--dataset", str(tiny_build), "--model", "x/y", "--set", "lora.rank=8"])
    assert rc == 2 and "override lora.rank: unknown key" in capsys.readouterr().err


def test_bf16_on_a_machine_without_gpu_is_a_clear_error(tiny_model, tiny_build, tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    rc = main(["train", "--dataset", str(tiny_build), "--model", str(tiny_model), "--output", str(tmp_path / "o")])
    assert rc == 2 and "bf16 needs a GPU" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_end_to_end_demo_build_published_then_trained(hub, tiny_model, tmp_path, capsys):
    """repic demo (real build pipeline) -> curate.publish.upload -> repic train from the tagged version."""
    from curate.publish.upload import publish

    assert main(["demo", "--out", str(tmp_path / "demo"), "--size", "tiny", "--workers", "1"]) == 0
    build = tmp_path / "demo" / "builds" / "repic-demo" / "1.0.0"
    published = publish(build, "tester/repic-demo")
    capsys.readouterr()
    out = tmp_path / "run"
    rc = main(
        [
            "train",
            "--dataset",
            f"tester/repic-demo@{published.tag}",
            "--model",
            str(tiny_model),
            "--output",
            str(out),
            "--max-steps",
            "1",
            *SMALL_FLAGS,
        ]
    )
    assert rc == 0, capsys.readouterr().err
    rec = json.loads((out / "training_manifest.json").read_text())
    built = json.loads((build / "manifest.json").read_text())
    assert rec["dataset"]["commit"] == published.commit and rec["dataset"]["revision"] == published.tag
    assert rec["dataset"]["recipe_hash"] == built["recipe_hash"] and rec["rows"] == built["counts"]["total"]
    assert rec["result"]["global_step"] == 1
    # the tiny model's processor allows far fewer pixels than the demo recipe's model frame
    assert rec["processor_frame"] == {"min_pixels": 3136, "max_pixels": 12544, "factor": 28}
    assert rec["vlt_queries_resized_by_processor"] == built["counts"]["by_task"]["vlt"]


def test_full_fine_tuning_keeps_the_vision_tower_frozen(tiny_model, tiny_build, tmp_path):
    seen = {}

    def snapshot(trainer):
        params = dict(trainer.model.named_parameters())
        seen.update(trainer=trainer, before={n: p.detach().clone() for n, p in params.items()})

    run_training(
        str(tiny_build),
        str(tiny_model),
        load_config(None, {**SMALL, "use_lora": False}),
        tmp_path / "run",
        extra_reward_funcs=[completion_checksum],
        on_trainer=snapshot,
    )
    trainer = seen["trainer"]
    assert trainer.ref_model is not None  # beta 0.04 without PEFT: a separate reference model
    after = dict(trainer.model.named_parameters())
    changed = {n for n, p in after.items() if not torch.equal(p.detach(), seen["before"][n])}
    assert any("language_model" in n for n in changed)
    assert not any("visual" in n for n in changed) and not any(
        p.requires_grad for n, p in after.items() if "visual" in n
    )


def test_model_revision_is_recorded_for_hub_cache_snapshots(tiny_model, tmp_path):
    import shutil

    from train.trainer import resolve_model

    sha = "0123456789abcdef0123456789abcdef01234567"
    snap = tmp_path / "models--org--m" / "snapshots" / sha
    shutil.copytree(tiny_model, snap)
    assert resolve_model(str(snap)).record()["revision"] == sha
    assert resolve_model(str(tiny_model)).record()["revision"] is None


def test_grpo_config_carries_weights_suppression_and_the_papers_settings(tiny_model, tmp_path):
    from tests.support.tiny_qwen import VISION_TOKENS, special_ids
    from train.trainer import grpo_config, resolve_model

    model = resolve_model(str(tiny_model))
    cfg = load_config(None, {**SMALL, "rewards.weights": {"vlt": 2.0}, "suppress_tokens": [7]})
    args = grpo_config(cfg, tmp_path, model, ["oct", "vlt", "ict_single", "ict_multi", "extra"])
    assert args.reward_weights == [1.0, 2.0, 1.0, 1.0, 1.0]
    ids = special_ids(model.processor.tokenizer)
    assert set(args.generation_kwargs["suppress_tokens"]) == {ids[t] for t in VISION_TOKENS} | {7}
    assert (args.beta, args.loss_type, args.scale_rewards, args.use_bias_correction_kl) == (
        0.04,
        "grpo",
        "group",
        False,
    )
    assert (args.epsilon, args.temperature, args.use_vllm, args.remove_unused_columns) == (0.2, 1.0, False, False)
