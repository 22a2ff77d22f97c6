"""`datasets.load_dataset(FOLDER)` returns the folder's own rows, whatever was loaded before from the same cache.

Every build of one version has the same folder name (``<name>/1.0.0``); with a ``configs`` section in
the local README.md, datasets keyed its cache on the unresolved pattern and that name only.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
import yaml

from curate.materialize.pipeline import build
from curate.materialize.rows import FEATURES
from curate.publish.pull import pull
from curate.publish.upload import publish
from tests.support.builds import make_build
from tests.support.corpus import tiny_corpus, write_recipe


def _quiet(message: str) -> None:
    pass


def _shard_ids(folder: Path) -> list[str]:
    return sorted(i for p in sorted((folder / "data").glob("*.parquet")) for i in pq.read_table(p)["id"].to_pylist())


def _loaded_ids(folder: Path, cache: Path) -> list[str]:
    ds = datasets.load_dataset(str(folder), split="train", cache_dir=str(cache))  # what `repic demo` prints
    assert ds.features == FEATURES
    return sorted(ds["id"])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return tiny_corpus(tmp_path_factory.mktemp("corpus"))


def test_two_builds_of_one_version_and_a_rebuild_each_load_their_own_rows(tmp_path, corpus):
    cache = tmp_path / "hf-datasets-cache"
    a = build(write_recipe(tmp_path / "ra", corpus, total=40), tmp_path / "a", workers=1, log=_quiet)
    b = build(write_recipe(tmp_path / "rb", corpus, total=24, seed=5), tmp_path / "b", workers=1, log=_quiet)
    assert a.name == b.name == "1.0.0" and _shard_ids(a) != _shard_ids(b)
    assert _loaded_ids(a, cache) == _shard_ids(a)
    assert _loaded_ids(b, cache) == _shard_ids(b)
    assert "configs" not in yaml.safe_load((a / "README.md").read_text().split("---\n")[1])

    shutil.rmtree(a)  # the same path, rebuilt from another recipe
    again = build(write_recipe(tmp_path / "rc", corpus, total=32, seed=9), tmp_path / "a", workers=1, log=_quiet)
    assert again == a and _shard_ids(a) != _shard_ids(b)
    assert _loaded_ids(a, cache) == _shard_ids(a)


def test_pulled_versions_with_the_same_folder_name_each_load_their_own_rows(hub, tmp_path):
    cache = tmp_path / "hf-datasets-cache"
    publish(make_build(tmp_path / "a", rows=8), "one/mix")
    publish(make_build(tmp_path / "b", rows=4, salt="-b"), "two/mix")
    first = pull("one/mix@v1.0.0", tmp_path / "x" / "mix-v1.0.0").out
    second = pull("two/mix@v1.0.0", tmp_path / "y" / "mix-v1.0.0").out
    assert _loaded_ids(first, cache) == _shard_ids(first) and len(_shard_ids(first)) == 8
    assert _loaded_ids(second, cache) == _shard_ids(second) and len(_shard_ids(second)) == 4
    # the published card keeps `configs` for the Hub
    assert "configs" in yaml.safe_load(hub.files("one/mix", "v1.0.0")["README.md"].decode().split("---\n")[1])
