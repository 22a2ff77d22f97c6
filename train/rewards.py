r"""RePIC's verifiable rewards, one function per task.

Every function has TRL's reward signature ``fn(completions, solution, task, **kwargs)``
and returns one value per completion: a float for rows of its own task and ``None``
for other tasks' rows (TRL then skips the function for that row). ``solution`` is the
JSON string of :mod:`curate.materialize.rows`.

Defaults reproduce the rules of the official RePIC implementation:

* OCT: the first ``yes``/``no`` word of the output (case-insensitive) must equal the answer.
* VLT: the first ``[x1, y1, x2, y2]`` of four non-negative integers (the official regex
  ``\[(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\]``: a box with decimals is skipped, not read)
  must reach IoU >= 0.5 with the answer box, IoU computed with the official inclusive-pixel
  formula (intersection ``min(x2 - 1, ...) - max(x1, ...) + 1``, areas ``(x2 - x1) * (y2 - y1)``).
  Boxes are in the stored query image's frame, which a build makes the frame the model sees; if
  the processor still resizes the query (a build made for other pixel limits), the predicted box
  is mapped back from the model's frame first (``vlt_frame``).

Options (``rewards.*`` in the training config), named departures from the official rules:

* ``vlt_box_numbers: decimals``: the first box whose four numbers may be decimals or negative,
  with spaces allowed inside the brackets (``[ 10.5, -2, 110, 110.9 ]``).
* ``vlt_iou: continuous``: the area IoU of real-valued boxes (``min(x2, ...) - max(x1, ...)``).

The OCT rule takes the first *word* ``yes``/``no`` (word-bounded), where the official code
searches a bare substring: a deliberate improvement, so that "I don't know" is not "no".

Each reward is a small callable class (picklable, so multi-process launchers can ship it).
* Single-ICT: 1 if the exact ``<name>`` occurs and the output has at least 100 characters;
  0 if the output contains the closing form ``</name>`` (anti reward-hacking rule).
* Multi-ICT: the fraction of the names that occur; 0 if the output is shorter than 100 characters.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence

_YES_NO = re.compile(r"\b(yes|no)\b", re.IGNORECASE)
_NUM = r"\s*(-?\d+(?:\.\d+)?)\s*"
_DECIMAL_BOX = re.compile(r"\[" + ",".join([_NUM] * 4) + r"\]")
_INTEGER_BOX = re.compile(r"\[(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\]")  # the official regex
BOX_NUMBERS = ("integers", "decimals")
IOU_MODES = ("inclusive", "continuous")


def completion_text(completion) -> str:
    """The text of one completion, conversational (list of messages) or plain."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return str(completion.get("content") or "")
    parts = []
    for message in completion or []:
        content = message.get("content") if isinstance(message, dict) else message
        if isinstance(content, list):  # content parts
            parts.extend(str(p.get("text") or "") for p in content if isinstance(p, dict))
        else:
            parts.append(str(content or ""))
    return "".join(parts)


def first_yes_no(text: str) -> str | None:
    match = _YES_NO.search(text)
    return match.group(1).lower() if match else None


def first_box(text: str, numbers: str = "integers") -> tuple[float, float, float, float] | None:
    """The first box of the output: four integers (official) or four decimals (``numbers="decimals"``)."""
    match = (_INTEGER_BOX if numbers == "integers" else _DECIMAL_BOX).search(text)
    return tuple(float(v) for v in match.groups()) if match else None  # type: ignore[return-value]


def iou_inclusive(a: Sequence[float], b: Sequence[float]) -> float:
    """The official (VLM-R1) IoU: inclusive pixel coordinates in the intersection, plain areas in the union."""
    ix1, iy1 = max(a[0], b[0]), max(a[1], b[1])
    ix2, iy2 = min(a[2] - 1, b[2] - 1), min(a[3] - 1, b[3] - 1)
    inter = (ix2 - ix1 + 1) * (iy2 - iy1 + 1) if ix1 < ix2 and iy1 < iy2 else 0.0
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Continuous intersection over union of two ``[x1, y1, x2, y2]`` boxes (an empty box scores 0)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area_a = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1])
    area_b = max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


def closing_form(name: str) -> str:
    """``<Anya>`` -> ``</Anya>``; a name without angle brackets gets ``</name>`` around it."""
    inner = name[1:-1] if name.startswith("<") and name.endswith(">") else name
    return f"</{inner}>"


# --- per-row scores -------------------------------------------------------------------------------


def score_oct(text: str, answer: str) -> float:
    return 1.0 if first_yes_no(text) == str(answer).lower() else 0.0


def score_vlt(
    text: str,
    answer: Sequence[float],
    iou_threshold: float = 0.5,
    scale=(1.0, 1.0),
    box_numbers: str = "integers",
    iou_mode: str = "inclusive",
) -> float:
    box = first_box(text, box_numbers)
    if box is None:
        return 0.0
    sx, sy = scale
    if (sx, sy) != (1.0, 1.0):
        box = (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)
    overlap = iou_inclusive(box, answer) if iou_mode == "inclusive" else iou(box, answer)
    return 1.0 if overlap >= iou_threshold else 0.0


def score_ict_single(text: str, name: str, min_chars: int = 100, zero_on_closing_tag: bool = True) -> float:
    if zero_on_closing_tag and closing_form(name) in text:
        return 0.0
    return 1.0 if name in text and len(text) >= min_chars else 0.0


def score_ict_multi(text: str, names: Sequence[str], min_chars: int = 100) -> float:
    if len(text) < min_chars or not names:
        return 0.0
    return sum(1 for n in names if n in text) / len(names)


# --- TRL reward functions ---------------------------------------------------------------------------


def model_frame_scale(image, frame: tuple[int, int, int] | None) -> tuple[float, float]:
    """(sx, sy) from the model's input frame to ``image``'s own frame under ``frame`` = (min_pixels, max_pixels, factor)."""
    if frame is None or image is None:
        return 1.0, 1.0
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    width, height = image.size
    min_pixels, max_pixels, factor = frame
    seen_h, seen_w = smart_resize(height, width, factor, min_pixels=min_pixels, max_pixels=max_pixels)
    return width / seen_w, height / seen_h


class TaskReward(ABC):
    """A TRL reward function for one task: a score per row of that task, ``None`` for other tasks' rows.

    Subclasses set ``task`` and implement :meth:`score`. Instances are plain objects, so they pickle.
    """

    task = ""

    @property
    def __name__(self) -> str:  # TRL logs rewards/<__name__>/mean
        return self.task

    @abstractmethod
    def score(self, text: str, solution, query_image) -> float:
        """The reward of one completion of this task's row."""

    def __call__(self, completions, solution, task, images=None, **kwargs) -> list[float | None]:
        out: list[float | None] = []
        images = images if images is not None else [None] * len(completions)
        for completion, sol, row_task, row_images in zip(completions, solution, task, images, strict=True):
            if row_task != self.task:
                out.append(None)
                continue
            query = row_images[-1] if row_images else None  # the query image is the last one
            out.append(self.score(completion_text(completion), json.loads(sol), query))
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


class OCTReward(TaskReward):
    task = "oct"

    def score(self, text, solution, query_image):
        return score_oct(text, solution)


class VLTReward(TaskReward):
    task = "vlt"

    def __init__(self, iou_threshold=0.5, box_numbers="integers", iou_mode="inclusive", frame=None):
        if box_numbers not in BOX_NUMBERS or iou_mode not in IOU_MODES:
            raise ValueError(f"box_numbers must be one of {BOX_NUMBERS}, iou_mode one of {IOU_MODES}")
        self.iou_threshold, self.box_numbers, self.iou_mode = iou_threshold, box_numbers, iou_mode
        self.frame = tuple(frame) if frame else None

    def score(self, text, solution, query_image):
        scale = model_frame_scale(query_image, self.frame)
        return score_vlt(text, solution, self.iou_threshold, scale, self.box_numbers, self.iou_mode)


class ICTSingleReward(TaskReward):
    task = "ict_single"

    def __init__(self, min_chars=100, zero_on_closing_tag=True):
        self.min_chars, self.zero_on_closing_tag = min_chars, zero_on_closing_tag

    def score(self, text, solution, query_image):
        return score_ict_single(text, solution, self.min_chars, self.zero_on_closing_tag)


class ICTMultiReward(TaskReward):
    task = "ict_multi"

    def __init__(self, min_chars=100):
        self.min_chars = min_chars

    def score(self, text, solution, query_image):
        return score_ict_multi(text, solution, self.min_chars)


def make_reward_funcs(
    *,
    vlt_iou_threshold: float = 0.5,
    vlt_box_numbers: str = "integers",
    vlt_iou: str = "inclusive",
    ict_single_min_chars: int = 100,
    ict_single_zero_on_closing_tag: bool = True,
    ict_multi_min_chars: int = 100,
    vlt_frame: tuple[int, int, int] | None = None,
) -> list[TaskReward]:
    """The four task rewards (named ``oct``, ``vlt``, ``ict_single``, ``ict_multi``) with these settings.

    ``vlt_frame`` = (min_pixels, max_pixels, patch_size * merge_size) of the model's processor.
    """
    return [
        OCTReward(),
        VLTReward(vlt_iou_threshold, vlt_box_numbers, vlt_iou, vlt_frame),
        ICTSingleReward(ict_single_min_chars, ict_single_zero_on_closing_tag),
        ICTMultiReward(ict_multi_min_chars),
    ]


oct_reward, vlt_reward, ict_single_reward, ict_multi_reward = make_reward_funcs()
