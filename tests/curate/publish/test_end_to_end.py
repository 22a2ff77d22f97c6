"""The user's path: repic build (demo recipe, tiny corpus) -> repic publish -> load_dataset / pull / resolve."""

from __future__ import annotations

from pathlib import Path

import datasets
import pytest
import yaml

from curate.cli import main
from curate.publish.refs import resolve_dataset

DEMO_RECIPE = Path(__file__).resolve().parents[3] / "recipes" / "demo.yaml"


@pytest.mark.slow
def test_build_publish_load_pull(hub, tmp_path, capfd):
    from curate.demo.corpus import generate_corpus

    corpus = tmp_path / "corpus"
    generate_corpus(corpus, size="tiny")
    recipe = yaml.safe_load(DEMO_RECIPE.read_text().replace("${REPIC_DEMO_CORPUS}", str(corpus)))
    recipe["mixture"]["total"] = 40
    recipe["output"] = {"examples_per_shard": 16}
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))

    assert main(["build", str(tmp_path / "recipe.yaml"), "--out", str(tmp_path / "builds")]) == 0
    build = tmp_path / "builds" / "repic-demo" / "1.0.0"
    assert main(["publish", str(build), "--repo", "lab/repic-demo"]) == 0
    assert "tag:    v1.0.0" in capfd.readouterr().out

    local = datasets.load_dataset("parquet", data_files=str(build / "data" / "*.parquet"), split="train")
    remote = datasets.load_dataset("lab/repic-demo", revision="v1.0.0", split="train")
    assert len(remote) == len(local) > 0 and remote.features == local.features
    assert sorted(remote.to_list(), key=lambda r: r["id"]) == sorted(local.to_list(), key=lambda r: r["id"])

    card = hub.files("lab/repic-demo", "v1.0.0")["README.md"].decode()
    assert 'revision="v1.0.0"' in card and "lab/repic-demo@v1.0.0" in card

    resolved = resolve_dataset("lab/repic-demo@v1.0.0")
    assert resolved.pinned and resolved.commit == hub.tags("lab/repic-demo")["v1.0.0"]
    assert main(["pull", "lab/repic-demo@v1.0.0", "--out", str(tmp_path / "pulled")]) == 0
    # the pulled folder is a complete build again: it resolves locally and republishes as the same version
    assert resolve_dataset(str(tmp_path / "pulled")).manifest == resolved.manifest
    assert main(["publish", str(tmp_path / "pulled"), "--repo", "lab/repic-demo"]) == 0
    assert "already holds this exact build" in capfd.readouterr().out
