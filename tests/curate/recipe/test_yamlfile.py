"""The YAML loader shared by recipes and training configs: encoding and duplicate keys (issue 9, items 6 and 7)."""

from __future__ import annotations

import pytest

from curate.cli import main
from curate.errors import UserError
from curate.recipe import load_recipe
from curate.recipe.yamlfile import load_mapping
from tests.curate.recipe.test_load import BASE, layout, write  # noqa: F401  (layout is a fixture)
from train.config import load_config


def test_non_utf8_recipe_is_one_line(layout, capsys):  # noqa: F811
    raw = BASE.encode().replace(b"name: demo", b"name: d\xffmo")
    p = layout / "latin.yaml"
    p.write_bytes(raw)
    offset = raw.index(b"\xff")
    with pytest.raises(UserError) as info:
        load_recipe(p)
    assert str(info.value) == f"{p}: not UTF-8 text (byte 0xff at offset {offset})"
    assert main(["recipe", "check", str(p)]) == 2
    err = capsys.readouterr().err
    assert "not UTF-8 text (byte 0xff" in err and "Traceback" not in err


def test_non_utf8_training_config(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_bytes(b"max_steps: 3\nbeta: 0.0\x80\n")
    with pytest.raises(UserError, match=r"t.yaml: not UTF-8 text \(byte 0x80 at offset 22\)$"):
        load_config(p)


def test_duplicate_key_names_both_lines(layout):  # noqa: F811
    p = write(layout, BASE.replace("  total: 10\n", "  total: 10\n  total: 20\n"))
    with pytest.raises(UserError) as info:
        load_recipe(p)
    assert str(info.value) == f"{p}:11: mixture.total: duplicate key (first set on line 10)"


def test_duplicate_top_level_key_and_in_training_config(tmp_path, layout):  # noqa: F811
    p = write(layout, BASE + "seed: 8\n")
    with pytest.raises(UserError, match=r":12: seed: duplicate key \(first set on line 3\)"):
        load_recipe(p)
    t = tmp_path / "t.yaml"
    t.write_text("lora:\n  r: 8\n  alpha: 16\n  r: 4\n")
    with pytest.raises(UserError, match=r"t.yaml:4: lora.r: duplicate key \(first set on line 2\)"):
        load_config(t)


@pytest.mark.timeout(20)
def test_aliases_are_walked_once(tmp_path):
    # each level refers to the previous one twice: walking every path would take 2**40 steps
    lines = ["a0: &a0 [1]"] + [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}]" for i in range(1, 41)]
    p = tmp_path / "deep.yaml"
    p.write_text("\n".join(lines) + "\n")
    data, line_of = load_mapping(p, "recipe")
    assert line_of[("a40",)] == 41
