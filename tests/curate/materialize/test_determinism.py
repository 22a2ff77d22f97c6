"""Byte-identical output with 1 worker, 2 workers and on a rerun from scratch."""

from __future__ import annotations

from pathlib import Path

import pytest

from curate.materialize.pipeline import build
from tests.support.corpus import same_commit, tiny_corpus, write_recipe


def _files(build_dir: Path) -> dict[str, bytes]:
    names = [p for p in sorted(build_dir.rglob("*")) if p.is_file() and p.name != "README.md"]
    return {
        p.relative_to(build_dir).as_posix(): same_commit(p.read_bytes())
        if p.name == "manifest.json"
        else p.read_bytes()
        for p in names
    }


@pytest.mark.slow
def test_one_worker_two_workers_and_rerun_are_byte_identical(tmp_path):
    corpus = tiny_corpus(tmp_path / "corpus")
    recipe = write_recipe(tmp_path, corpus, total=48, per_shard=8)
    quiet = lambda m: None  # noqa: E731
    one = _files(build(recipe, tmp_path / "w1", workers=1, log=quiet))
    two = _files(build(recipe, tmp_path / "w2", workers=2, log=quiet))
    again = _files(build(recipe, tmp_path / "w1-again", workers=1, log=quiet))
    assert len([n for n in one if n.startswith("data/")]) >= 4
    assert {"manifest.json", "quarantine.parquet", "recipe.yaml", "preview.png"} <= set(one)
    assert one.keys() == two.keys() == again.keys()
    for name in one:
        assert one[name] == two[name], f"{name} differs between 1 and 2 workers"
        assert one[name] == again[name], f"{name} differs on a rerun"
