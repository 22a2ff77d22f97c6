import pytest

from curate.errors import UserError
from curate.plan.names import NameGenerator, banned_words, check_names, derive_seed, is_person, nickname


def test_nickname_is_a_short_pet_like_form():
    assert nickname("Charlotte") == "char"
    assert nickname("Bobby") == "bob"
    assert nickname("Olivia") == "ol"
    assert nickname("Max") == "max"


def test_person_kinds():
    assert is_person("person") and is_person("Person ")
    assert not is_person("dog") and not is_person(None)


def test_banned_words_cover_whole_categories_and_their_words():
    banned = banned_words(["Teddy Bear", "Moniter/TV", None])
    assert {"teddy bear", "teddy", "bear", "moniter/tv", "moniter", "tv", "think", "answer"} <= banned


def test_same_key_same_names_whatever_was_drawn_before():
    gen = NameGenerator(7, "en_US")
    first = gen.names_for(("oct", "coco", "1"), ["person", "thing", "thing"])
    gen.names_for(("oct", "coco", "2"), ["thing"])
    again = NameGenerator(7, "en_US").names_for(("oct", "coco", "1"), ["person", "thing", "thing"])
    assert first == again == gen.names_for(("oct", "coco", "1"), ["person", "thing", "thing"])
    other_seed = NameGenerator(8, "en_US").names_for(("oct", "coco", "1"), ["person", "thing", "thing"])
    assert other_seed != first


def test_names_are_bracketed_distinct_and_never_substrings():
    gen = NameGenerator(0, "en_US")
    for i in range(400):
        names = gen.names_for(("multi", i), ["thing", "thing", "person"])
        assert all(n.startswith("<") and n.endswith(">") for n in names)
        assert check_names(names, banned=()) == []


def test_banned_words_are_never_drawn():
    free = NameGenerator(3, "en_US")
    seen = {n[1:-1].lower() for i in range(150) for n in free.names_for(("k", i), ["thing", "person"])}
    banned = set(list(seen)[: len(seen) // 2])
    gen = NameGenerator(3, "en_US", banned=banned)
    for i in range(150):
        names = gen.names_for(("k", i), ["thing", "person"])
        assert not {n[1:-1].lower() for n in names} & banned


def test_check_names_reports_each_rule():
    assert "duplicate names" in check_names(["<Ann>", "<ann>"], ())
    assert any("substring" in p for p in check_names(["<Ann>", "<Anna>"], ()))
    assert any("banned" in p for p in check_names(["<Dog>"], {"dog"}))


def test_unknown_locale_is_a_user_error():
    with pytest.raises(UserError, match="names.locale"):
        NameGenerator(0, "xx_NOPE")


def test_derive_seed_is_stable():
    assert derive_seed(0, "a", 1) == derive_seed(0, "a", 1) != derive_seed(0, "a", 2)
    assert derive_seed("x") == 0x2D711642B726B044  # sha256-based: the same on every platform and run


def test_thing_names_are_at_least_three_letters_and_not_common_words():
    gen = NameGenerator(1, "en_US")
    things = [n[1:-1] for i in range(500) for n in gen.names_for(("t", i), ["thing"])]
    assert all(len(t) >= 3 and t not in {"and", "her", "the"} for t in things)
    assert len(set(things)) > 50  # still plenty of variety
