import json
import pickle

import pytest

from train.rewards import (
    completion_text,
    ict_multi_reward,
    ict_single_reward,
    iou,
    iou_inclusive,
    make_reward_funcs,
    oct_reward,
    vlt_reward,
)

PAD = " This sentence only makes the caption long enough to pass the minimum length of the reward." * 2


def conv(text):
    return [{"role": "assistant", "content": text}]


def run(fn, outputs, task, solution):
    n = len(outputs)
    return fn(completions=[conv(o) for o in outputs], solution=[json.dumps(solution)] * n, task=[task] * n)


@pytest.mark.parametrize(
    "output,answer,expected",
    [
        ("Yes.", "yes", 1.0),
        ("NO", "no", 1.0),
        ("no, definitely yes", "yes", 0.0),  # the FIRST yes/no decides
        ("Nobody knows; yes it is", "yes", 1.0),  # 'no' inside 'Nobody' is not a word
        ("I think so", "yes", 0.0),
        ("", "no", 0.0),
        ("Oui — yes ✓", "yes", 1.0),
        ("Answer: No!", "yes", 0.0),
    ],
)
def test_oct(output, answer, expected):
    assert run(oct_reward, [output], "oct", answer) == [expected]


@pytest.mark.parametrize(
    "output,expected",
    [
        ("[10, 10, 50, 50]", 1.0),
        ("The box is [10.4, 9.6, 49.5, 50.2].", 0.0),  # the official regex reads integers only
        ("[ 10, 10, 50, 50 ]", 0.0),  # ... and no space after '[' or before ']'
        ("[10.4, 9.6, 49.5, 50.2] [10 , 10,50 ,50]", 1.0),  # the decimal box is skipped, not read
        ("[200, 200, 300, 300] and then [10, 10, 50, 50]", 0.0),  # only the first box counts
        ("[10, 10, 50, 50] [200, 200, 300, 300]", 1.0),
        ("[10,10,40,40]", 1.0),  # IoU 900/1600 = 0.5625
        ("[10, 10, 38, 38]", 0.0),  # IoU 784/1600 = 0.49
        ("no box here", 0.0),
        ("[10, 10, 50]", 0.0),
        ("[50, 50, 10, 10]", 0.0),  # inverted box is empty
        ("", 0.0),
        ("框 [10, 10, 50, 50] ✓", 1.0),
    ],
)
def test_vlt(output, expected):
    assert run(vlt_reward, [output], "vlt", [10, 10, 50, 50]) == [expected]


@pytest.mark.parametrize(
    "output,official,lenient",
    [  # the examples of issue 12: official rules by default, today's lenient parsing as a named option
        ("[10.5, 10.2, 110.0, 110.9]", 0.0, 1.0),
        ("[1.5,2,3,4] then [10,10,110,110]", 1.0, 0.0),
        ("[ -5, 10, 110, 110 ]", 0.0, 1.0),
        ("[10, 10, 110, 110]", 1.0, 1.0),
    ],
)
def test_vlt_official_default_and_decimals_option(output, official, lenient):
    answer = [10, 10, 110, 110]
    assert run(vlt_reward, [output], "vlt", answer) == [official]
    assert run(make_reward_funcs()[1], [output], "vlt", answer) == [official]
    decimals = make_reward_funcs(vlt_box_numbers="decimals", vlt_iou="continuous")[1]
    assert run(decimals, [output], "vlt", answer) == [lenient]


def test_vlt_inclusive_iou_is_the_official_formula():
    # VLM-R1 / RePIC: intersection over inclusive pixel coordinates, union of plain areas
    assert iou_inclusive([10, 10, 110, 110], [10, 10, 110, 110]) == 1.0
    assert iou_inclusive([10, 10, 50, 50], [10, 10, 40, 40]) == pytest.approx(900 / 1600)
    # a one-pixel-wide overlap: min(x2 - 1, ...) == max(x1, ...), so the official rule counts no intersection
    assert iou_inclusive([0, 0, 2, 10], [1, 0, 3, 10]) == 0.0
    assert iou([0, 0, 2, 10], [1, 0, 3, 10]) == pytest.approx(1 / 3)
    inclusive = make_reward_funcs(vlt_iou_threshold=0.3)[1]
    continuous = make_reward_funcs(vlt_iou_threshold=0.3, vlt_iou="continuous")[1]
    assert run(inclusive, ["[1, 0, 3, 10]"], "vlt", [0, 0, 2, 10]) == [0.0]
    assert run(continuous, ["[1, 0, 3, 10]"], "vlt", [0, 0, 2, 10]) == [1.0]


def test_reward_functions_pickle_with_their_settings():
    funcs = make_reward_funcs(vlt_iou_threshold=0.3, vlt_box_numbers="decimals", vlt_frame=(3136, 200704, 28))
    copies = pickle.loads(pickle.dumps(funcs))
    assert [f.__name__ for f in copies] == ["oct", "vlt", "ict_single", "ict_multi"]
    assert (copies[1].iou_threshold, copies[1].box_numbers, copies[1].frame) == (0.3, "decimals", (3136, 200704, 28))
    completions = [conv("yes"), conv("[1.5, 1, 5, 5]"), conv("x"), conv("y")]
    solutions = [json.dumps(s) for s in ("yes", [1, 1, 5, 5], "<n>", ["<n>"])]
    kwargs = {"completions": completions, "solution": solutions, "task": ["oct", "vlt", "ict_single", "ict_multi"]}
    assert [f(**kwargs) for f in copies] == [f(**kwargs) for f in funcs]


def test_vlt_threshold_is_configurable():
    strict = make_reward_funcs(vlt_iou_threshold=0.9)[1]
    assert run(strict, ["[10,10,40,40]"], "vlt", [10, 10, 50, 50]) == [0.0]
    assert run(strict, ["[10,10,50,50]"], "vlt", [10, 10, 50, 50]) == [1.0]


@pytest.mark.parametrize(
    "output,expected",
    [
        ("<Anya> is walking a dog in the park." + PAD, 1.0),
        ("<Anya> is walking.", 0.0),  # shorter than 100 characters
        ("<Anya> is walking a dog in the park.</Anya>" + PAD, 0.0),  # closing form -> 0
        ("<anya> is walking a dog in the park." + PAD, 0.0),  # exact, case-sensitive
        ("<Anyanka> is walking a dog in the park." + PAD, 0.0),  # name inside another word
        ("Anya is walking a dog in the park." + PAD, 0.0),
        ("", 0.0),
        ("<Anya> läuft mit einem Hund im Park — ✓ 日本語." + PAD, 1.0),
    ],
)
def test_ict_single(output, expected):
    assert run(ict_single_reward, [output], "ict_single", "<Anya>") == [expected]


def test_ict_single_settings():
    _, _, single, _ = make_reward_funcs(ict_single_min_chars=5, ict_single_zero_on_closing_tag=False)
    assert run(single, ["<Anya> runs</Anya>"], "ict_single", "<Anya>") == [1.0]


@pytest.mark.parametrize(
    "output,expected",
    [
        ("<a> and <b> and <c> stand together." + PAD, 1.0),
        ("<a> and <c> stand together." + PAD, pytest.approx(2 / 3)),
        ("<ab> and <bc> stand together." + PAD, 0.0),  # names inside other words
        ("<a> <b> <c>", 0.0),  # too short
        ("", 0.0),
    ],
)
def test_ict_multi(output, expected):
    assert run(ict_multi_reward, [output], "ict_multi", ["<a>", "<b>", "<c>"]) == [expected]


def test_other_tasks_get_none_and_names_are_per_task():
    funcs = make_reward_funcs()
    assert [f.__name__ for f in funcs] == ["oct", "vlt", "ict_single", "ict_multi"]
    completions = [conv("yes"), conv("[1, 1, 5, 5]"), conv("x"), conv("y")]
    solutions = [json.dumps(s) for s in ("yes", [1, 1, 5, 5], "<n>", ["<n>", "<m>"])]
    tasks = ["oct", "vlt", "ict_single", "ict_multi"]
    table = [f(completions=completions, solution=solutions, task=tasks, images=[[]] * 4) for f in funcs]
    assert table[0] == [1.0, None, None, None]
    assert table[1] == [None, 1.0, None, None]
    assert table[2] == [None, None, 0.0, None]
    assert table[3] == [None, None, None, 0.0]


def test_completion_text_forms():
    assert completion_text("plain") == "plain"
    assert completion_text([{"role": "assistant", "content": "a"}]) == "a"
    assert completion_text([{"role": "assistant", "content": [{"type": "text", "text": "b"}]}]) == "b"
    assert completion_text([{"role": "assistant", "content": None}]) == ""


def test_vlt_maps_the_box_back_when_the_processor_resizes_the_query():
    from PIL import Image

    # a 640x480 query under max_pixels 200704 is seen as 504x364 by the model: the model's box is in that frame
    frame = (3136, 200704, 28)
    vlt = make_reward_funcs(vlt_frame=frame, vlt_box_numbers="decimals")[1]  # the mapped box is fractional
    query = Image.new("RGB", (640, 480))
    answer = json.dumps([100, 100, 300, 300])  # stored frame
    seen = "[78.75, 75.83, 236.25, 227.5]"  # the same box in the 504x364 frame
    kwargs = dict(solution=[answer] * 2, task=["vlt"] * 2, images=[[query]] * 2)
    assert vlt(completions=[conv(seen), conv("[100, 100, 300, 300]")], **kwargs) == [1.0, 0.0]
    # a query already in the model's frame is not rescaled (the build's normal case)
    framed = Image.new("RGB", (504, 364))
    assert vlt(completions=[conv("[100, 100, 300, 300]")], solution=[answer], task=["vlt"], images=[[framed]]) == [1.0]
    # without a frame (or without images) the raw box is compared, as in the official code
    assert vlt_reward(completions=[conv("[100, 100, 300, 300]")], solution=[answer], task=["vlt"]) == [1.0]
