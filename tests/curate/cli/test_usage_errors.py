"""Usage errors print Click's usage message and exit 2, never a traceback (issue 9, item 5)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from curate.cli import app, main

ROOT = Path(__file__).resolve().parents[3]
CASES = {
    "bad value": (["build", "recipes/demo.yaml", "--workers", "two"], "Invalid value for '--workers'"),
    "missing argument": (["build"], "Missing argument"),
    "unknown option": (["build", "recipes/demo.yaml", "--bogus"], "No such option: --bogus"),
    "unknown command": (["frobnicate"], "No such command 'frobnicate'"),
}


@pytest.mark.parametrize("args, message", CASES.values(), ids=CASES.keys())
def test_usage_error_in_a_subprocess(args, message):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "curate.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2, proc.stderr
    assert "Usage:" in proc.stderr and message in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


@pytest.mark.parametrize("args, message", CASES.values(), ids=CASES.keys())
def test_usage_error_in_process(args, message, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "Usage:" in err and message in err and "Traceback" not in err


@pytest.mark.parametrize("args, message", CASES.values(), ids=CASES.keys())
def test_usage_error_with_cli_runner(args, message, monkeypatch):
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "Usage:" in result.output and message in result.output
    assert "Traceback" not in result.output
