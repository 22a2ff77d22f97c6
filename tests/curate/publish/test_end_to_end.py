"""The user's path: repic build (demo recipe, tiny corpus) -> repic publish -> load_dataset / pull / resolve."""

from __future__ import annotations

from pathlib import Path

import datasets
import pytest
import yaml

from curate.cli import main
from curate.publish.refs import resolve_dataset
from curate.publish.upload import publish

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


def test_published_recipe_is_the_recipe_as_written_without_local_paths(hub, tmp_path, monkeypatch):
    from curate.demo.corpus import generate_corpus
    from curate.materialize.manifest import read_manifest, verify_build
    from curate.materialize.pipeline import build
    from curate.publish.pull import pull
    from curate.publish.versions import list_versions
    from curate.recipe import load_recipe, recipe_hash

    corpus = tmp_path / "corpus"
    generate_corpus(corpus, size="tiny")
    monkeypatch.setenv("REPIC_DEMO_CORPUS", str(corpus))
    recipe = yaml.safe_load(DEMO_RECIPE.read_text())  # sources still read ${REPIC_DEMO_CORPUS}
    recipe["mixture"]["total"] = 24
    recipe["output"] = {"examples_per_shard": 16}
    path = tmp_path / "recipe.yaml"
    path.write_text("# my mixture (comments are kept)\n" + yaml.safe_dump(recipe, sort_keys=False))
    as_written = path.read_bytes()
    assert b"${REPIC_DEMO_CORPUS}" in as_written

    built = build(path, tmp_path / "builds", workers=1, log=lambda m: None)
    assert (built / "recipe.yaml").read_bytes() == as_written
    assert str(corpus) in (built / "recipe.resolved.yaml").read_text()  # the resolved copy stays local
    manifest = read_manifest(built)
    assert "recipe.yaml" in manifest["files"] and "recipe.resolved.yaml" not in manifest["files"]
    assert manifest["recipe_hash"] == recipe_hash(load_recipe(path)) and verify_build(built) == []

    publish(built, "lab/recipe")
    files = hub.files("lab/recipe", "v1.0.0")
    assert files["recipe.yaml"] == as_written and "recipe.resolved.yaml" not in files
    assert [p for p, data in files.items() if str(tmp_path).encode() in data] == []
    assert manifest["recipe_hash"] in files["README.md"].decode()
    assert list_versions("lab/recipe")[0].recipe_hash == manifest["recipe_hash"]
    pulled = pull("lab/recipe@v1.0.0", tmp_path / "pulled")
    assert (pulled.out / "recipe.yaml").read_bytes() == as_written and verify_build(pulled.out) == []
