"""The restricted unpickler builds plain data and refuses anything that could run code."""

from __future__ import annotations

import os
import pickle

import pytest

from curate.errors import UserError
from curate.sources import safe_pickle

REF = {
    "ref_id": 22758,
    "ann_id": 540661,
    "image_id": 9,
    "split": "testA",
    "sent_ids": [64727, 64728],
    "sentences": [
        {"tokens": ["woman", "in", "front"], "raw": "Woman in front", "sent": "woman in front", "sent_id": 64727}
    ],
    "score": 0.5,
    "ok": True,
    "none": None,
    "pair": (1, 2),
    "blob": b"\x00\xffraw",
}


@pytest.mark.parametrize("protocol", [0, 1, 2, pickle.HIGHEST_PROTOCOL])
def test_plain_data_round_trips(tmp_path, protocol):
    path = tmp_path / "refs(unc).p"
    path.write_bytes(pickle.dumps([REF], protocol=protocol))
    assert safe_pickle.load(path) == [REF]


def test_python2_byte_strings_decode_as_utf8_then_latin1():
    # Python 2 cPickle protocol 2 of {'sent': 'caf\xc3\xa9'} (a UTF-8 byte string) and of a latin-1 byte string
    utf8 = b"\x80\x02}q\x00U\x04sentq\x01U\x05caf\xc3\xa9q\x02s."
    latin = b"\x80\x02}q\x00U\x04sentq\x01U\x04caf\xe9q\x02s."
    assert safe_pickle.loads(utf8) == {"sent": "café"}
    assert safe_pickle.loads(latin) == {"sent": "café"}


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_os_system_reduce_is_refused_and_never_runs(tmp_path, protocol):
    marker = tmp_path / "pwned"
    path = tmp_path / "refs(unc).p"
    path.write_bytes(pickle.dumps([{"ref_id": 1, "x": _Evil(marker)}], protocol=protocol))
    with pytest.raises(UserError) as err:
        safe_pickle.load(path)
    msg = str(err.value)
    assert "refs(unc).p" in msg and "refused to unpickle" in msg
    assert "system" in msg and "nothing was executed" in msg and "\n" not in msg
    assert not marker.exists()


def test_classes_sets_and_codecs_tricks_are_refused():
    for obj in ({1, 2}, _Evil("x").__class__, complex(1, 2)):
        with pytest.raises(safe_pickle.UnsafePickleError):
            safe_pickle.loads(pickle.dumps(obj, protocol=2))
    # _codecs.encode is allowed only for the text->bytes form Python itself writes
    sneaky = b"c_codecs\nencode\n(Vx\nVrot13\ntR."
    with pytest.raises(safe_pickle.UnsafePickleError):
        safe_pickle.loads(sneaky)


def test_unreadable_files_are_one_line_user_errors(tmp_path):
    bad = tmp_path / "refs(google).p"
    bad.write_text('{"this is": "json"}')
    with pytest.raises(UserError, match=r"refs\(google\)\.p: not a readable pickle"):
        safe_pickle.load(bad)
    truncated = tmp_path / "cut.p"
    truncated.write_bytes(pickle.dumps([REF] * 3, protocol=2)[:50])
    with pytest.raises(UserError, match="cut.p: not a readable pickle"):
        safe_pickle.load(truncated)
    with pytest.raises(UserError, match="missing.p: cannot read"):
        safe_pickle.load(tmp_path / "missing.p")


def shared_levels(n: int) -> list:
    """``[a, a]`` of ``[b, b]`` of ...: n levels, n + 1 lists, 2**n paths; the pickle is a few hundred bytes."""
    node: list = []
    for _ in range(n):
        node = [node, node]
    return node


@pytest.mark.timeout(20)
def test_shared_references_are_walked_once_and_bounded(tmp_path):
    data = pickle.dumps(shared_levels(40), protocol=2)
    assert len(data) < 400
    path = tmp_path / "refs(unc).p"
    path.write_bytes(data)
    with pytest.raises(UserError) as err:
        safe_pickle.load(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: refused to unpickle: ") and "50,000,000" in msg and "\n" not in msg
    assert safe_pickle.loads(pickle.dumps(shared_levels(10), protocol=2)) == shared_levels(10)  # small: fine


def test_depth_and_cycles_are_refused(tmp_path):
    deep: list = []
    for _ in range(150):
        deep = [deep]
    path = tmp_path / "deep.p"
    path.write_bytes(pickle.dumps(deep, protocol=2))
    with pytest.raises(UserError, match=r"deep.p: refused to unpickle: containers are nested more than 100 levels"):
        safe_pickle.load(path)
    loop: list = [1]
    loop.append(loop)
    path.write_bytes(pickle.dumps(loop, protocol=2))
    with pytest.raises(UserError, match="deep.p: refused to unpickle: a container contains itself"):
        safe_pickle.load(path)
