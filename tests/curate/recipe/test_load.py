"""Recipe loading: one-line errors with file line and key path, env interpolation, hashing."""

from __future__ import annotations

import textwrap

import pytest

from curate.cli import main
from curate.errors import UserError
from curate.recipe import load_recipe, recipe_hash


def write(tmp_path, text, name="r.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


BASE = """\
name: demo
version: 1.2.3
seed: 7
sources:
  coco:
    kind: coco
    annotations: ann.json
    images: imgs
mixture:
  total: 10
  proportions: {oct: 0.5, vlt: 0.5}
"""


@pytest.fixture
def layout(tmp_path):
    (tmp_path / "ann.json").write_text("{}")
    (tmp_path / "imgs").mkdir()
    return tmp_path


def test_valid_recipe_resolves_relative_paths(layout):
    r = load_recipe(write(layout, BASE))
    assert r.sources["coco"].annotations == (layout / "ann.json").resolve()
    assert r.seed == 7 and r.mixture.total == 10


@pytest.mark.parametrize(
    "patch, expected",
    [
        (("seed: 7", "seed: 7\nbogus: 1"), ":4: bogus: unknown key"),
        (("version: 1.2.3", "version: 1.2"), ":2: version: '1.2' is not a semantic version"),
        (("seed: 7", "seed: seven"), ":3: seed: Input should be a valid integer"),
        (("    images: imgs", "    images: imgs\n    color: red"), ":9: sources.coco.color: unknown key"),
        (("{oct: 0.5, vlt: 0.5}", "{oct: 0.5, vlt: 0.6}"), ":11: mixture.proportions: proportions must sum to 1"),
        (("annotations: ann.json", "annotations: missing.json"), ":7: sources.coco.annotations: path does not exist"),
        (("    kind: coco", "    kind: cocoa"), "sources.coco"),
    ],
)
def test_errors_name_line_and_key(layout, patch, expected):
    p = write(layout, BASE.replace(*patch))
    with pytest.raises(UserError) as exc:
        load_recipe(p)
    msg = str(exc.value)
    assert "\n" not in msg
    assert expected in msg, msg
    assert msg.startswith(str(p))


def test_env_interpolation_and_missing_var(layout, monkeypatch):
    text = BASE.replace("annotations: ann.json", "annotations: ${DATA_ROOT}/ann.json")
    p = write(layout, text)
    monkeypatch.setenv("DATA_ROOT", str(layout))
    assert load_recipe(p).sources["coco"].annotations == layout / "ann.json"
    monkeypatch.delenv("DATA_ROOT")
    with pytest.raises(UserError, match=r":7: sources.coco.annotations: environment variable DATA_ROOT is not set"):
        load_recipe(p)
    p2 = write(layout, BASE.replace("annotations: ann.json", "annotations: ${DATA_ROOT:-.}/ann.json"), "r2.yaml")
    assert load_recipe(p2).sources["coco"].annotations == (layout / "ann.json").resolve()


def test_hash_ignores_formatting_workers_and_paths_but_not_content(layout, tmp_path_factory):
    h1 = recipe_hash(load_recipe(write(layout, BASE)))
    reformatted = (
        "# a comment\n"
        + BASE.replace("{oct: 0.5, vlt: 0.5}", "\n    vlt: 0.5\n    oct: 0.5")
        + "runtime:\n  workers: 8\n  executor: ray\n  ray_address: auto\n"
    )
    assert load_recipe(write(layout, reformatted, "r2.yaml")).runtime.executor == "ray"
    assert recipe_hash(load_recipe(write(layout, reformatted, "r2.yaml"))) == h1
    with pytest.raises(UserError, match="runtime.executor"):
        load_recipe(write(layout, BASE + "runtime:\n  executor: dask\n", "r4.yaml"))
    other = tmp_path_factory.mktemp("elsewhere")
    (other / "ann.json").write_text("{}")
    (other / "imgs").mkdir()
    assert recipe_hash(load_recipe(write(other, BASE))) == h1
    assert recipe_hash(load_recipe(write(layout, BASE.replace("seed: 7", "seed: 8"), "r3.yaml"))) != h1


def test_not_yaml_and_not_mapping(tmp_path):
    with pytest.raises(UserError, match="not valid YAML"):
        load_recipe(write(tmp_path, "a: [1, 2\n"))
    with pytest.raises(UserError, match="mapping at the top level"):
        load_recipe(write(tmp_path, "- 1\n- 2\n"))
    with pytest.raises(UserError, match="recipe not found"):
        load_recipe(tmp_path / "nope.yaml")


def test_cli_check_prints_hash_and_one_line_errors(layout, capsys):
    p = write(layout, BASE)
    assert main(["recipe", "check", str(p), "-q"]) == 0
    out = capsys.readouterr().out.strip()
    assert out == recipe_hash(load_recipe(p))
    bad = write(layout, BASE.replace("seed: 7", "seed: 7\nbogus: 1"), "bad.yaml")
    assert main(["recipe", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bogus: unknown key" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "var", ["HF_TOKEN", "AWS_SECRET_ACCESS_KEY", "DB_PASSWORD", "api_key", "HUGGINGFACE_HUB_TOKEN"]
)
def test_secret_named_variables_are_refused(layout, monkeypatch, var):
    monkeypatch.setenv(var, "x")
    p = write(layout, BASE.replace("name: demo", f"name: demo-${{{var}}}"))
    with pytest.raises(UserError) as info:
        load_recipe(p)
    msg = str(info.value)
    assert msg.startswith(f"{p}:1: name: ") and var in msg and "secret" in msg and "\n" not in msg
    assert "x" not in msg.split(var)[-1]  # the value itself is never printed


def test_token_looking_values_are_refused(layout, monkeypatch):
    token = "hf_" + "aB3" * 12
    monkeypatch.setenv("MY_NAME", token)
    p = write(layout, BASE.replace("name: demo", "name: ${MY_NAME}"))
    with pytest.raises(UserError) as info:
        load_recipe(p)
    msg = str(info.value)
    assert "MY_NAME" in msg and "Hub token" in msg and token not in msg
    monkeypatch.setenv("MY_NAME", "hf_demo")  # short: a name, not a token
    assert load_recipe(p).name == "hf_demo"


def test_shared_values_are_interpolated_once(layout):
    # YAML aliases share one object: 40 levels of [a, a] must not take 2**40 steps
    text = BASE + "".join(["x0: &x0 [1]\n"] + [f"x{i}: &x{i} [*x{i - 1}, *x{i - 1}]\n" for i in range(1, 41)])
    p = write(layout, text)
    with pytest.raises(UserError, match="x0: unknown key"):
        load_recipe(p)


def test_a_non_path_source_setting_named_like_a_path_stays_in_the_hash(tmp_path):
    """CelebA's ``images: aligned|wild`` picks other photos: it must change the hash (paths must not)."""
    root = tmp_path / "celeba"
    root.mkdir()
    text = (
        "name: faces\nversion: 1.0.0\nseed: 0\n"
        "sources:\n  celeba:\n    kind: celeba\n    root: {root}\n    images: {images}\n"
    )
    aligned = write(tmp_path, text.format(root=root, images="aligned"), "a.yaml")
    wild = write(tmp_path, text.format(root=root, images="wild"), "w.yaml")
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    moved = write(tmp_path, text.format(root=elsewhere, images="aligned"), "m.yaml")
    assert recipe_hash(load_recipe(aligned)) != recipe_hash(load_recipe(wild))
    assert recipe_hash(load_recipe(aligned)) == recipe_hash(load_recipe(moved))
