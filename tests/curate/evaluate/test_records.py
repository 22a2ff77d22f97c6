"""Caption files are untrusted JSON: a deeply nested one is a one-line error (issue 9, item 2)."""

from __future__ import annotations

import pytest

from curate.errors import UserError
from curate.evaluate.records import load_records


def test_deeply_nested_caption_file_is_one_line(tmp_path):
    path = tmp_path / "captions.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(UserError, match=r"captions.json: not a usable caption file: JSON values nested too deeply$"):
        load_records(path)
