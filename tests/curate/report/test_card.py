"""The dataset card: valid Hub metadata, content from the manifest, kept user keys."""

from __future__ import annotations

import json

import pytest
from huggingface_hub import DatasetCard
from PIL import Image

from curate.errors import UserError
from curate.publish.upload import publish
from curate.report.card import render_card, split_readme


def test_card_metadata_is_valid_and_points_at_the_shards(build_dir):
    text = render_card(build_dir, repo_id="org/tiny", tag="v1.0.0")
    card = DatasetCard(text)
    data = card.data.to_dict()
    assert data["configs"] == [
        {"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*.parquet"}]}
    ]
    assert data["license"] == "other" and data["language"] == ["en"] and data["size_categories"] == ["n<1K"]
    assert "image-text-to-text" in data["task_categories"] and "repic" in data["tags"] and data["pretty_name"]


def test_card_content_comes_from_the_manifest(build_dir):
    manifest = json.loads((build_dir / "manifest.json").read_text())
    text = render_card(build_dir, repo_id="org/tiny", tag="v1.0.0")
    assert (
        "| oct | 0 | 2 | 0 | 0 | 2 |" in text
    )  # task x source table (sources sorted: celeba coco objects365 subjects200k)
    assert "| **total** | 2 | 2 | 2 | 2 | **8** |" in text
    assert manifest["recipe_hash"] in text and manifest["toolkit"]["git_commit"] in text
    assert manifest["sources"]["coco"]["fingerprint"] in text
    assert "| bbox_out_of_bounds | 1 |" in text and "| missing_image | 1 |" in text
    assert 'load_dataset("org/tiny", revision="v1.0.0"' in text
    assert "repic train --dataset org/tiny@v1.0.0 --model Qwen/Qwen2.5-VL-7B-Instruct" in text
    assert "arXiv:2506.18369" in text and "@article{oh2025repic" in text
    assert "non-commercial research use only" in text and "CC BY 4.0" in text and "Apache-2.0" in text
    assert "![Contact sheet of sample rows](preview.png)" in text
    chart = Image.open(build_dir / "composition.png")
    assert chart.format == "PNG" and chart.width > 200
    # the chart really has one coloured bar segment per source
    colours = {c for _, c in chart.convert("RGB").getcolors(1 << 16) if len(set(c)) > 1}
    assert len(colours) >= 4


def test_card_without_repo_documents_the_local_build(build_dir):
    (build_dir / "preview.png").unlink()
    text = render_card(build_dir)
    assert 'load_dataset("ORG/NAME", revision="v1.0.0"' in text and "preview.png" not in text


def test_user_metadata_keys_are_kept_generated_ones_are_set(build_dir):
    existing = (
        "---\nlicense: cc-by-nc-4.0\npretty_name: My mixture\ntags: [mine]\nlanguage: [en, ko]\n"
        "size_categories: [1M<n<10M]\nconfigs: [{config_name: old, data_files: old/*.parquet}]\n"
        "annotations_creators: [machine-generated]\n---\n# old text\n"
    )
    meta, body = split_readme(render_card(build_dir, existing_readme=existing))
    assert meta["license"] == "cc-by-nc-4.0" and "license_name" not in meta
    assert meta["pretty_name"] == "My mixture" and meta["language"] == ["en", "ko"]
    assert meta["annotations_creators"] == ["machine-generated"]
    assert meta["tags"][0] == "mine" and "repic" in meta["tags"]
    assert meta["size_categories"] == ["n<1K"]  # a fact about this version
    assert meta["configs"][0]["config_name"] == "default"
    assert "# old text" not in body


def test_broken_existing_card_is_a_clear_error(build_dir):
    with pytest.raises(UserError, match="invalid YAML"):
        render_card(build_dir, existing_readme="---\nlicense: [unclosed\n---\n")


def test_publish_keeps_the_repo_card_user_keys(hub, build_dir):
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo("org/tiny", repo_type="dataset")
    api.upload_file(
        path_or_fileobj=b"---\nlicense: cc-by-nc-4.0\nthumbnail: cover.png\n---\nhello\n",
        path_in_repo="README.md",
        repo_id="org/tiny",
        repo_type="dataset",
    )
    publish(build_dir, "org/tiny")
    card = DatasetCard(hub.files("org/tiny", "v1.0.0")["README.md"].decode())
    assert card.data.license == "cc-by-nc-4.0" and card.data.to_dict()["thumbnail"] == "cover.png"
    assert card.data.to_dict()["configs"][0]["data_files"][0]["path"] == "data/train-*.parquet"
    # the Hub validated the card when it was committed
    assert hub.requests("POST", "/api/validate-yaml")
