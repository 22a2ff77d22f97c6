"""The global batch of a run under a multi-process launcher is the one recorded and printed."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_cpu_processes_under_accelerate_record_the_global_batch(tiny_model, tiny_build, tmp_path):
    """`accelerate launch` with 2 CPU processes (gloo): 2 x 1 completion x accumulation 2 = 4 completions =
    2 prompts x G=2 per optimizer step; 4 rows, 1 epoch -> 2 optimizer steps."""
    out = tmp_path / "run"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HF_HUB_OFFLINE": "1",
        "ACCELERATE_USE_CPU": "true",
        "MASTER_ADDR": "127.0.0.1",
        "OMP_NUM_THREADS": "1",
    }
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_ip",
        "127.0.0.1",
        "--main_process_port",
        str(_free_port()),
        "-m",
        "curate.cli",
        "train",
        "--dataset",
        str(tiny_build),
        "--model",
        str(tiny_model),
        "--output",
        str(out),
        "--no-bf16",
        "--num-generations",
        "2",
        "--per-device-train-batch-size",
        "1",
        "--gradient-accumulation-steps",
        "2",
        "--max-completion-length",
        "8",
        "--save-strategy",
        "no",
        "--num-train-epochs",
        "1",
    ]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    rec = json.loads((out / "training_manifest.json").read_text())
    batch = rec["global_batch"]
    assert (batch["processes"], batch["per_device_completions"], batch["gradient_accumulation_steps"]) == (2, 1, 2)
    assert (batch["num_generations"], batch["completions_per_step"], batch["prompts_per_step"]) == (2, 4, 2)
    assert batch["optimizer_steps"] == 2 == rec["result"]["global_step"]  # the plan is what the Trainer ran
    assert rec["status"] == "complete"
    card = (out / "README.md").read_text()
    assert "| global batch | 2 prompts x 2 = 4 completions per optimizer step, 2 steps (2 process(es)) |" in card
    assert done.stdout.count("global batch: 2 process(es) x 1 completion(s) per device x accumulation 2 = 4 ") == 1
    assert "the paper used 2" not in done.stdout + done.stderr  # 2 prompts per step: no warning


def test_one_process_prints_the_plan_and_warns_off_the_papers_batch(tiny_model, tiny_build, tmp_path, capsys, caplog):
    from tests.support.trainbuilds import SMALL
    from train.config import load_config
    from train.trainer import run_training

    # SMALL: 2 completions x accumulation 1, G=2 -> 1 prompt per optimizer step
    rec = run_training(str(tiny_build), str(tiny_model), load_config(None, SMALL), tmp_path / "a")
    assert rec["global_batch"]["prompts_per_step"] == 1 and rec["global_batch"]["optimizer_steps"] == 2
    assert (
        "= 2 completions = 1 prompts x 2 generations per optimizer step; 2 optimizer steps" in capsys.readouterr().out
    )
    warned = [r.getMessage() for r in caplog.records if "the paper used 2" in r.getMessage()]
    expected = (
        "1 prompts per optimizer step, the paper used 2 (16 completions); set global_batch_intended: true if this is "
        "on purpose"
    )
    assert warned == [expected]
    caplog.clear()
    run_training(
        str(tiny_build), str(tiny_model), load_config(None, {**SMALL, "global_batch_intended": True}), tmp_path / "b"
    )
    assert not [r for r in caplog.records if "the paper used 2" in r.getMessage()]
