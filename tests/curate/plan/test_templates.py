import os
import random
import re
from pathlib import Path

import pytest

from curate.plan import templates as T

PAPER = Path(__file__).resolve().parents[4] / "shared" / "paper" / "RePIC-paper.txt"


def test_template_counts_match_the_paper_tables():
    assert len(T.OCT_QUESTIONS) == 16  # table A.4
    assert len(T.VLT_TEMPLATES) == 11  # table A.5
    assert len(T.ICT_QUESTIONS) == 25  # table A.6
    assert len(T.ICT_MULTI_SYSTEMS) == 4  # the multi-ICT system prompt and its three variants
    assert set(T.REASONING) == {"think", "observe"}  # table A.1


def test_every_text_is_verbatim_from_the_paper():
    if not PAPER.exists():
        if os.environ.get("CI"):  # CI runs beside a copy of ../shared: a missing paper is a broken set-up
            pytest.fail(f"{PAPER} is missing; CI must run beside ../shared")
        pytest.skip(f"the paper text ({PAPER}) is not beside this checkout")
    paper = " ".join(PAPER.read_text(encoding="utf-8").split())
    texts = [*T.OCT_QUESTIONS, *T.VLT_TEMPLATES, *(q for q, _ in T.ICT_QUESTIONS), *T.REASONING.values()]
    texts += [T.OCT_SYSTEM, T.ICT_SINGLE_SYSTEM]
    texts += [s.replace("<names>", "<name1>, <name2>") for s in T.ICT_MULTI_SYSTEMS if "and <name3>" not in s]
    missing = [
        t
        for t in texts
        if t not in paper and t.replace("<name1>, <name2>.", "<name1>, <name2>, and <name3>.") not in paper
    ]
    assert missing == []


def test_oct_prompt_has_the_name_the_question_and_the_hint():
    r = T.render_oct("<Luna>", random.Random(3))
    assert r.text.startswith("As an evaluation expert") and r.text.count("<Luna>") >= 1
    assert "{Question}" not in r.text and "<name>" not in r.text
    assert r.text.endswith(T.OCT_HINT) and r.problem == r.text[: -len(T.OCT_HINT) - 1]
    q = int(re.fullmatch(r"oct\.q(\d\d)", r.template).group(1))
    assert T.OCT_QUESTIONS[q].replace("<name>", "<Luna>") in r.text


def test_reasoning_sentence_sits_directly_before_the_question():
    for reasoning in ("think", "observe"):
        r = T.render_ict_single("<bo>", random.Random(1), reasoning=reasoning)
        assert r.template.endswith("+" + reasoning)
        q = int(re.match(r"ict\.q(\d\d)", r.template).group(1))
        assert T.REASONING[reasoning] + " " + T.ICT_QUESTIONS[q][0] in r.text
    plain = T.render_ict_single("<bo>", random.Random(1))
    assert "<think>" not in plain.text and "<observe>" not in plain.text and "+" not in plain.template
    with pytest.raises(ValueError):
        T.render_oct("<bo>", random.Random(0), reasoning="ponder")


def test_detailed_switch_limits_ict_questions_to_simple_ones():
    simple = {i for i, (_, d) in enumerate(T.ICT_QUESTIONS) if not d}
    drawn = set()
    for seed in range(300):
        r = T.render_ict_single("<bo>", random.Random(seed), detailed=False)
        drawn.add(int(re.match(r"ict\.q(\d\d)", r.template).group(1)))
    assert drawn == simple  # only simple ones, and all of them
    with_detailed = {
        int(re.match(r"ict\.q(\d\d)", T.render_ict_single("<bo>", random.Random(s)).template).group(1))
        for s in range(300)
    }
    assert with_detailed - simple  # detailed ones appear when allowed
    assert "Describe the image in detail." in [T.ICT_QUESTIONS[i][0] for i in with_detailed - simple]


def test_ict_hints_follow_the_official_one_in_five_rule():
    ids = [T.render_ict_single("<bo>", random.Random(s)).template for s in range(2000)]
    for h in (".h0", ".h1"):
        share = sum(h in t for t in ids) / len(ids)
        assert 0.16 < share < 0.24


def test_multi_ict_names_are_joined_as_in_the_paper():
    assert T.join_names(["<a>", "<b>"]) == "<a>, <b>"
    assert T.join_names(["<a>", "<b>", "<c>"]) == "<a>, <b>, and <c>"
    for seed in range(20):
        r = T.render_ict_multi(["<a>", "<b>", "<c>"], random.Random(seed))
        assert "<a>, <b>, and <c>." in r.text and re.match(r"ict_multi\.s[0-3]\.q\d\d", r.template)


def test_vlt_puts_the_expression_in_the_name_slot():
    r = T.render_vlt("  the man in red  ", random.Random(0))
    assert "the man in red" in r.text and "<name>" not in r.text and r.text.endswith(T.VLT_HINT)


def test_user_messages_layout_for_trl():
    msgs = T.user_messages(3, "hello")
    assert len(msgs) == 1 and msgs[0]["role"] == "user"
    parts = msgs[0]["content"]
    assert parts[:3] == [{"type": "image", "text": None}] * 3 and parts[3] == {"type": "text", "text": "hello"}
    assert all(set(p) == {"type", "text"} for p in parts)  # never an "image" key
