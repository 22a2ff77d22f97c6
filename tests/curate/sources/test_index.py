"""Index cache: reused while inputs are unchanged, rebuilt when a file changes."""

from __future__ import annotations

import os

import polars as pl

from curate.sources import index as index_mod
from curate.sources.coco import CocoSource
from curate.sources.registry import SourceKind
from curate.sources.tables import SourceTables, from_rows, quarantine_row


def fake_reader(calls):
    def read(name, spec):
        calls.append(name)
        images = from_rows(
            "images", [{"source": name, "image_id": "1", "path": "a.jpg", "width": 4, "height": 3, "split": "train"}]
        )
        q = from_rows("quarantine", [quarantine_row(name, "index", 7, "bbox_nan")])
        return SourceTables(name, "coco", {"images": images, "quarantine": q})

    return SourceKind("coco", CocoSource, read=read, input_files=lambda spec: [spec.annotations])


def test_cache_reuse_and_invalidation(tmp_path, monkeypatch):
    ann = tmp_path / "ann.json"
    ann.write_text('{"images": []}')
    calls = []
    monkeypatch.setattr(index_mod, "source_kind", lambda kind: fake_reader(calls))
    spec = CocoSource(kind="coco", annotations=ann, images=tmp_path)
    cache = tmp_path / "cache"

    st1 = index_mod.index_source("coco", spec, cache_dir=cache)
    st2 = index_mod.index_source("coco", spec, cache_dir=cache)
    assert calls == ["coco"]  # second read came from the cache
    assert st2.images.equals(st1.images) and st2.quarantine.equals(st1.quarantine)
    assert st2.summary() == {"images": 1, "quarantine": 1, "quarantine:bbox_nan": 1}

    ann.write_text('{"images": [1]}')  # content and size change
    index_mod.index_source("coco", spec, cache_dir=cache)
    assert calls == ["coco", "coco"]

    st = os.stat(ann)
    os.utime(ann, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched only
    index_mod.index_source("coco", spec, cache_dir=cache)
    assert calls == ["coco"] * 3


def test_fingerprint_ignores_paths_and_mtime(tmp_path, monkeypatch):
    monkeypatch.setattr(index_mod, "source_kind", lambda kind: fake_reader([]))
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "ann.json").write_text("same")
    (b / "ann.json").write_text("same")
    fa = index_mod.source_fingerprint(CocoSource(kind="coco", annotations=a / "ann.json", images=a))
    fb = index_mod.source_fingerprint(CocoSource(kind="coco", annotations=b / "ann.json", images=b))
    assert fa == fb
    (b / "ann.json").write_text("different")
    assert index_mod.source_fingerprint(CocoSource(kind="coco", annotations=b / "ann.json", images=b)) != fa


def test_damaged_cache_entry_is_rebuilt(tmp_path, monkeypatch):
    ann = tmp_path / "ann.json"
    ann.write_text("{}")
    calls = []
    monkeypatch.setattr(index_mod, "source_kind", lambda kind: fake_reader(calls))
    spec = CocoSource(kind="coco", annotations=ann, images=tmp_path)
    index_mod.index_source("coco", spec, cache_dir=tmp_path / "c")
    for f in (tmp_path / "c").rglob("images.parquet"):
        f.write_bytes(b"garbage")
    st = index_mod.index_source("coco", spec, cache_dir=tmp_path / "c")
    assert calls == ["coco", "coco"] and st.images.height == 1
    assert isinstance(st.images, pl.DataFrame)


def test_bad_fraction_leaves_out_filter_rejections():
    images = from_rows(
        "images", [{"source": "s", "image_id": str(i), "path": f"{i}.jpg", "width": 4, "height": 3} for i in range(8)]
    )
    q = from_rows(
        "quarantine",
        [quarantine_row("s", "filter", 1, "low_quality"), quarantine_row("s", "index", 2, "image_missing")],
    )
    st = SourceTables("s", "subjects200k", {"images": images, "quarantine": q})
    assert index_mod.bad_fraction(st) == 1 / 10  # one bad record among 8 kept + 2 quarantined


def test_a_source_that_supplies_nothing_to_a_weighted_task_is_a_warning():
    """Issue 9 item 13: a source whose every row was filtered must not vanish silently from a task."""
    from tests.support import synthetic as S

    tables = S.all_tables()
    q = from_rows("quarantine", [quarantine_row("subjects", "filter", i, "no_quality") for i in range(5)])
    tables["subjects"] = SourceTables("subjects", "subjects200k", {"quarantine": q})
    ref = tables["refcoco"].get("referring").with_columns(split=pl.lit("val"))
    tables["refcoco"] = SourceTables("refcoco", "refcoco", {**tables["refcoco"].tables, "referring": ref})
    warnings = index_mod.supply_warnings(S.recipe(), tables)
    assert warnings == [
        "source 'subjects' supplies nothing to oct (weight 1): it indexed no images; quarantined: filter|no_quality 5",
        "source 'refcoco' supplies nothing to vlt (weight 1): none of its 120 expressions is in tasks.vlt.splits "
        "['train']",
        "source 'subjects' supplies nothing to ict_single (weight 1): it indexed no images; quarantined: "
        "filter|no_quality 5",
    ]
    # a task without a share, or a source weighted 0, expects nothing
    r = S.recipe(proportions={"oct": 1.0}, tasks={"oct": {"sources": {"coco": 1.0, "subjects": 0.0}}})
    assert index_mod.supply_warnings(r, tables) == []


def test_build_and_index_summaries_warn_about_a_source_that_supplies_nothing(tmp_path, capsys):
    import yaml

    from curate.cli import main
    from curate.materialize.manifest import read_manifest
    from curate.materialize.pipeline import build
    from tests.support.corpus import tiny_corpus, write_recipe

    corpus = tiny_corpus(tmp_path / "corpus")
    recipe = write_recipe(tmp_path, corpus, total=30)
    data = yaml.safe_load(recipe.read_text())
    data["sources"]["subjects200k"]["collections"] = ["collection_9"]  # every row filtered
    data["runtime"] = {"cache_dir": str(tmp_path / "cache")}
    recipe.write_text(yaml.safe_dump(data))
    lines = []
    out = build(recipe, tmp_path / "out", workers=1, log=lines.append)
    want = "warning: source 'subjects200k' supplies nothing to oct (weight 1): it indexed no images; quarantined: "
    assert any(line.startswith(want) and "filter|collection_filtered" in line for line in lines)
    assert any(n.startswith(want) for n in read_manifest(out)["plan"]["notes"])
    assert main(["index", str(recipe)]) == 0
    assert "warning: source 'subjects200k' supplies nothing to ict_single" in capsys.readouterr().out


def test_reader_without_a_quarantine_table_gets_an_empty_one(tmp_path, monkeypatch):
    ann = tmp_path / "ann.json"
    ann.write_text("{}")
    kind = fake_reader([])
    plain = SourceKind("coco", CocoSource, read=lambda n, s: SourceTables(n, "coco", {}), input_files=kind.input_files)
    monkeypatch.setattr(index_mod, "source_kind", lambda k: plain)
    st = index_mod.index_source("coco", CocoSource(kind="coco", annotations=ann, images=tmp_path), use_cache=False)
    assert st.quarantine.height == 0 and index_mod.bad_fraction(st) == 0.0
