"""RePIC's verifiable rewards, one function per task.

Every function has TRL's reward signature ``fn(completions, solution, task, **kwargs)``
and returns one value per completion: a float for rows of its own task and ``None``
for other tasks' rows (TRL then skips the function for that row). ``solution`` is the
JSON string of :mod:`curate.materialize.rows`.

Defaults reproduce the rules of the official RePIC implementation:

* OCT: the first ``yes``/``no`` word of the output (case-insensitive) must equal the answer.
* VLT: the first ``[x1, y1, x2, y2]`` of the output (ints or floats) must reach IoU >= 0.5
  with the answer box. Boxes are in the stored query image's frame, which a build makes the
  frame the model sees; if the processor still resizes the query (a build made for other
  pixel limits), the predicted box is mapped back from the model's frame first (``vlt_frame``).
* Single-ICT: 1 if the exact ``<name>`` occurs and the output has at least 100 characters;
  0 if the output contains the closing form ``</name>`` (anti reward-hacking rule).
* Multi-ICT: the fraction of the names that occur; 0 if the output is shorter than 100 characters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence

_YES_NO = re.compile(r"\b(yes|no)\b", re.IGNORECASE)
_NUM = r"\s*(-?\d+(?:\.\d+)?)\s*"
_BOX = re.compile(r"\[" + ",".join([_NUM] * 4) + r"\]")


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


def first_box(text: str) -> tuple[float, float, float, float] | None:
    match = _BOX.search(text)
    return tuple(float(v) for v in match.groups()) if match else None  # type: ignore[return-value]


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``[x1, y1, x2, y2]`` boxes (an empty box scores 0)."""
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


def score_vlt(text: str, answer: Sequence[float], iou_threshold: float = 0.5, scale=(1.0, 1.0)) -> float:
    box = first_box(text)
    if box is None:
        return 0.0
    sx, sy = scale
    box = (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)
    return 1.0 if iou(box, answer) >= iou_threshold else 0.0


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


def _per_task(task_name: str, score: Callable[..., float], needs_image: bool = False):
    def reward(completions, solution, task, images=None, **kwargs) -> list[float | None]:
        out: list[float | None] = []
        images = images if images is not None else [None] * len(completions)
        for completion, sol, row_task, row_images in zip(completions, solution, task, images, strict=True):
            if row_task != task_name:
                out.append(None)
            elif needs_image:
                query = row_images[-1] if row_images else None  # the query image is the last one
                out.append(score(completion_text(completion), json.loads(sol), query))
            else:
                out.append(score(completion_text(completion), json.loads(sol)))
        return out

    reward.__name__ = task_name  # TRL logs rewards/<__name__>/mean
    reward.__qualname__ = task_name
    return reward


def make_reward_funcs(
    *,
    vlt_iou_threshold: float = 0.5,
    ict_single_min_chars: int = 100,
    ict_single_zero_on_closing_tag: bool = True,
    ict_multi_min_chars: int = 100,
    vlt_frame: tuple[int, int, int] | None = None,
) -> list[Callable]:
    """The four task rewards (named ``oct``, ``vlt``, ``ict_single``, ``ict_multi``) with these settings.

    ``vlt_frame`` = (min_pixels, max_pixels, patch_size * merge_size) of the model's processor.
    """
    return [
        _per_task("oct", score_oct),
        _per_task(
            "vlt",
            lambda text, box, query: score_vlt(text, box, vlt_iou_threshold, model_frame_scale(query, vlt_frame)),
            needs_image=True,
        ),
        _per_task(
            "ict_single",
            lambda text, name: score_ict_single(text, name, ict_single_min_chars, ict_single_zero_on_closing_tag),
        ),
        _per_task("ict_multi", lambda text, names: score_ict_multi(text, names, ict_multi_min_chars)),
    ]


oct_reward, vlt_reward, ict_single_reward, ict_multi_reward = make_reward_funcs()
