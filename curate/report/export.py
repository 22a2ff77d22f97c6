"""``repic export BUILD --format repic-json OUT``: a build in the official RePIC / VLM-R1 JSON layout.

The authors' trainer (a VLM-R1 fork) reads a JSON list of records with
``image`` (one path, or a list of paths for multi-image examples, query
last), ``problem`` (the user turn's text), ``solution`` and
``accu_reward_method`` choosing the reward: ``yes_no`` (OCT), ``iou`` (VLT),
``yes_no_name`` (single-ICT) and ``yes_no_name_multi`` (multi-ICT). The
images are written next to the JSON file under ``images/`` and referenced by
paths relative to it (the trainer's ``image_folder`` is the JSON's folder).

Choices where the layout leaves room: in ``problem`` every image position of
the user turn is written as ``<image>`` (the VLM-R1 placeholder), so
interleaved reference/query prompts keep their order; ``solution`` is the
row's parsed solution (``"yes"``/``"no"``, ``[x1, y1, x2, y2]`` in the stored
image's pixels, which are the model's input pixels, ``"<name>"`` or a list of
names); ``system`` holds the system prompt, and ``id``/``task`` are kept.
"""

from __future__ import annotations

import json
from pathlib import Path

from curate import progress
from curate.errors import UserError
from curate.fileio import atomic_write_text
from curate.materialize.manifest import read_manifest
from curate.materialize.rows import parse_solution
from curate.report.inspect import iter_rows

FORMATS = ("repic-json",)
REWARD_METHOD = {"oct": "yes_no", "vlt": "iou", "ict_single": "yes_no_name", "ict_multi": "yes_no_name_multi"}
IMAGE_MARK = "<image>"


def _ext(data: bytes) -> str:
    if data[:3] == b"\xff\xd8\xff":
        return "jpg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    return "bin"


def _texts(prompt: list[dict], role: str) -> str:
    out = []
    for m in prompt:
        if m["role"] != role:
            continue
        out.append("".join(IMAGE_MARK if p["type"] == "image" else (p["text"] or "") for p in m["content"]))
    return "\n".join(out)


def to_record(row: dict, image_paths: list[str]) -> dict:
    """The RePIC JSON record of one row whose images were saved at ``image_paths``."""
    if row["task"] not in REWARD_METHOD:
        raise UserError(f"row {row['id']}: unknown task {row['task']!r}; cannot choose a reward method")
    record = {
        "id": row["id"],
        "task": row["task"],
        "image": image_paths[0] if len(image_paths) == 1 else image_paths,
        "system": _texts(row["prompt"], "system"),
        "problem": _texts(row["prompt"], "user"),
        "solution": parse_solution(row["task"], row["solution"]),
        "accu_reward_method": REWARD_METHOD[row["task"]],
    }
    if row["names"]:
        record["names"] = list(row["names"])
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
