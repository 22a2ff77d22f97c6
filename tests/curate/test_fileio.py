"""curate.fileio: a file or folder written atomically is whole or absent, and a failed write leaves nothing behind."""

from __future__ import annotations

import json

import pytest

from curate.fileio import atomic_folder, atomic_path, atomic_write_json, temporary_files


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out" / "a.json"
    atomic_write_json(target, {"v": 1})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert json.loads(target.read_text()) == {"v": 1}
    assert temporary_files(tmp_path) == [] and sorted(p.name for p in target.parent.iterdir()) == ["a.json"]


def test_temporary_names_differ_per_write(tmp_path):
    with atomic_path(tmp_path / "x") as a, atomic_path(tmp_path / "x") as b:
        assert a != b and a.name.startswith(".x.tmp-")
        a.write_text("a")
        b.write_text("b")
    assert (tmp_path / "x").read_text() == "a"  # the last to finish wins, whole


def test_atomic_folder_replaces_the_old_folder_or_leaves_it(tmp_path):
    folder = tmp_path / "cache" / "entry"
    with atomic_folder(folder) as tmp:
        (tmp / "one").write_text("1")
    with pytest.raises(RuntimeError), atomic_folder(folder) as tmp:
        (tmp / "two").write_text("2")
        raise RuntimeError("failed")
    assert [p.name for p in folder.iterdir()] == ["one"]
    assert sorted(p.name for p in folder.parent.iterdir()) == ["entry"]
    with atomic_folder(folder) as tmp:
        (tmp / "three").write_text("3")
    assert [p.name for p in folder.iterdir()] == ["three"]
