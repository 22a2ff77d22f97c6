"""The row schema of a built mixture: the contract with ``train`` and with Hub users.

Prompt content parts are ``{"type": "text"|"image", "text": str|None}``; there is
never an ``image`` key in the part schema (TRL would treat every part as an
image). Images live in the ``images`` column, in placeholder order, query last.
``solution`` is a JSON string: ``"yes"``/``"no"`` (oct), ``[x1, y1, x2, y2]``
integers in the stored query image's frame (vlt), ``"<name>"`` (ict_single) or a
list of names (ict_multi).
"""

from __future__ import annotations

import json

import datasets

TASKS = ("oct", "vlt", "ict_single", "ict_multi")

MESSAGE = datasets.List(
    {
        "content": datasets.List({"text": datasets.Value("string"), "type": datasets.Value("string")}),
        "role": datasets.Value("string"),
    }
)

FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "task": datasets.Value("string"),
        "prompt": MESSAGE,
        "images": datasets.List(datasets.Image()),
        "solution": datasets.Value("string"),
        "names": datasets.List(datasets.Value("string")),
        "source": datasets.Value("string"),
        "source_ids": datasets.List(datasets.Value("string")),
        "template": datasets.Value("string"),
    }
)

COLUMNS = tuple(FEATURES.keys())


def count_placeholders(prompt: list[dict]) -> int:
    return sum(1 for m in prompt for part in m["content"] if part.get("type") == "image")


def parse_solution(task: str, solution: str):
    """Parse and check a row's solution for its task; raises ValueError when it does not fit."""
    value = json.loads(solution)
    if task == "oct":
        if value not in ("yes", "no"):
            raise ValueError(f"oct solution must be 'yes' or 'no', got {value!r}")
    elif task == "vlt":
        if not (isinstance(value, list) and len(value) == 4 and all(isinstance(v, int) for v in value)):
            raise ValueError(f"vlt solution must be 4 integers, got {value!r}")
        if not (value[0] < value[2] and value[1] < value[3]):
            raise ValueError(f"vlt box is empty: {value!r}")
    elif task == "ict_single":
        if not (isinstance(value, str) and value.startswith("<") and value.endswith(">")):
            raise ValueError(f"ict_single solution must be a '<name>' string, got {value!r}")
    elif task == "ict_multi":
        if not (isinstance(value, list) and len(value) >= 2 and all(isinstance(v, str) for v in value)):
            raise ValueError(f"ict_multi solution must be a list of >= 2 names, got {value!r}")
    else:
        raise ValueError(f"unknown task {task!r}")
    return value
