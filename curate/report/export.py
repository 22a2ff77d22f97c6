"""``repic export BUILD --format repic-json OUT``: a build in the official RePIC / VLM-R1 JSON layout.

The authors' trainer (a VLM-R1 fork) reads a JSON list of records with
``image`` (one path, or a list of paths for multi-image examples, query
last), ``problem`` (the user turn's text), ``solution`` and
``accu_reward_method`` choosing the reward: ``yes_no`` (OCT), ``iou`` (VLT),
``yes_no_name`` (single-ICT) and ``yes_no_name_multi`` (multi-ICT). The
images are written next to the JSON file under ``images/`` and referenced by
paths relative to it (the trainer's ``image_folder`` is the JSON's folder).

``problem`` is exactly the text that trainer expects: it builds the prompt
itself (``grpo_multitask_multi_img_no_format.py``), one image placeholder per
path with all images first, then ``problem`` plus its own answer hint (the
fixed OCT/VLT sentence, for ICT one of two sentences with probability 1/5 each,
else none). So ``problem`` holds no image markers and not the hint the build
appended to the stored prompt (the row's template id names it: every OCT/VLT
template, ``.h0``/``.h1`` for ICT); with the trainer's own hint the model sees
the build's prompt. A row whose images are not all before its text cannot be
written this way and is refused.

``solution`` is the row's parsed solution (``"yes"``/``"no"``, ``[x1, y1, x2,
y2]`` in the stored image's pixels, which are the model's input pixels,
``"<name>"`` or a list of names); ``system`` holds the system prompt, and
``id``/``task``/``template`` are kept.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from curate import progress
from curate.errors import UserError
from curate.fileio import atomic_write_text
from curate.materialize.manifest import read_manifest
from curate.materialize.rows import parse_solution
from curate.plan.templates import ICT_HINTS, OCT_HINT, VLT_HINT
from curate.report.inspect import iter_rows

FORMATS = ("repic-json",)
REWARD_METHOD = {"oct": "yes_no", "vlt": "iou", "ict_single": "yes_no_name", "ict_multi": "yes_no_name_multi"}
_ICT_HINT_ID = re.compile(r"\.h(\d+)(?=\+|$)")  # ict.q03.h1, ict_multi.s2.q07.h0+think


def _ext(data: bytes) -> str:
    if data[:3] == b"\xff\xd8\xff":
        return "jpg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    return "bin"


def _texts(prompt: list[dict], role: str) -> str:
    return "\n".join(
        "".join(p["text"] or "" for p in m["content"] if p["type"] != "image") for m in prompt if m["role"] == role
    )


def template_hint(task: str, template: str) -> str | None:
    """The answer hint a build appended for this template id (the official trainer appends the same)."""
    if task == "oct":
        return OCT_HINT
    if task == "vlt":
        return VLT_HINT
    match = _ICT_HINT_ID.search(template or "")
    return ICT_HINTS[int(match.group(1))] if match else None


def trainer_problem(row: dict) -> str:
    """The official JSON ``problem`` of a row: its user text without image markers and without the hint."""
    for m in row["prompt"]:
        if m["role"] == "user":
            kinds = [p["type"] for p in m["content"]]
            if "image" in kinds[kinds.index("text") if "text" in kinds else len(kinds) :]:
                raise UserError(
                    f"row {row['id']}: an image follows text in the prompt; the authors' trainer puts "
                    "all images first, so it cannot show this prompt"
                )
    text = _texts(row["prompt"], "user")
    hint = template_hint(row["task"], row.get("template", ""))
    if hint is not None:
        if not text.endswith(" " + hint):
            raise UserError(
                f"row {row['id']}: the prompt does not end with the answer hint of its template "
                f"{row.get('template')!r} ({hint!r})"
            )
        text = text[: -len(hint) - 1]
    return text


def to_record(row: dict, image_paths: list[str]) -> dict:
    """The RePIC JSON record of one row whose images were saved at ``image_paths``."""
    if row["task"] not in REWARD_METHOD:
        raise UserError(f"row {row['id']}: unknown task {row['task']!r}; cannot choose a reward method")
    record = {
        "id": row["id"],
        "task": row["task"],
        "image": image_paths[0] if len(image_paths) == 1 else image_paths,
        "system": _texts(row["prompt"], "system"),
        "problem": trainer_problem(row),
        "solution": parse_solution(row["task"], row["solution"]),
        "accu_reward_method": REWARD_METHOD[row["task"]],
    }
    if row["names"]:
        record["names"] = list(row["names"])
    if row.get("template"):
        record["template"] = row["template"]
    return record


def export_build(build_dir: str | Path, out: str | Path, *, fmt: str = "repic-json") -> Path:
    """Write the build as RePIC JSON; ``out`` is a ``.json`` file or a folder (then ``<out>/train.json``)."""
    if fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
    build_dir = Path(build_dir)
    manifest = read_manifest(build_dir)
    out = Path(out)
    json_path = out if out.suffix == ".json" else out / "train.json"
    folder = json_path.parent
    (folder / "images").mkdir(parents=True, exist_ok=True)
    records = []
    total = manifest.get("counts", {}).get("total")
    for row in progress.track(iter_rows(build_dir), "Exporting", total=total):
        paths = []
        for k, im in enumerate(row["images"]):
            rel = f"images/{row['id']}-{k}.{_ext(im['bytes'])}"
            (folder / rel).write_bytes(im["bytes"])
            paths.append(rel)
        records.append(to_record(row, paths))
    atomic_write_text(json_path, json.dumps(records, ensure_ascii=False, indent=1) + "\n")
    return json_path
