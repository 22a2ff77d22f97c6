"""`repic caption`: personalized captions from Qwen2.5-VL with in-context demonstrations.

Each query image gets a chat with the RePIC evaluation system prompt, then one
(reference image, "i. Name: <name>, Info: info") pair per demonstration, then the query
image and "This is the query image. <question>", the question cycling through the
evaluation prompts of the paper's table A.3. Demonstrations depend on the setting:

* ``skip-retrieval``: the query's ground-truth concepts (their main database image);
* ``retrieval``: the top-k concepts retrieved from the database (detector + CLIP);
* ``wrong-demo``: as many concepts as the query has, none of them a ground truth, chosen
  by a seeded hash of (image path, concept) so that the choice is deterministic (table 3).

Generation is greedy. The output is the caption-record format read by ``repic eval grounding``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from curate import imageio, progress
from curate.errors import UserError
from curate.evaluate.database import Database, load_database
from curate.evaluate.demos import Demo, default_top_k, demo_of, ground_truth_demos, wrong_demos
from curate.evaluate.records import CaptionRecord, load_queries, write_records

EVAL_PROMPTS = (  # paper, table A.3
    "Give a personalized caption of this image.",
    "Give a caption of the image.",
    "Can you provide a personalized caption for this photo?",
    "Provide a caption of the given image.",
)
SYSTEM_PROMPT = (
    "You are a captioning assistant. Your task is to generate an accurate caption for the query image.\n"
    "Below is additional information about the reference images."
)
NAME_HINT = "Output the final answer including its name."  # the zero-shot "detailed prompt" (section 4)
SETTINGS = ("skip-retrieval", "retrieval", "wrong-demo")


@dataclass
class CaptionOptions:
    setting: str
    base_model: Path | None = None
    clip: Path | None = None
    detector: Path | None = None
    detector_text: Path | None = None
    top_k: int | None = None
    name_hint: bool = False
    max_new_tokens: int = 1024
    max_pixels: int = 1024 * 28 * 28
    seed: int = 0
    device: str | None = None
    detector_conf: float = 0.1
    detector_imgsz: int = 640


def retrieved_demos(
    db: Database, db_path: Path, images: list[Image.Image], opts: CaptionOptions, k: int
) -> list[list[Demo]]:
    from curate.evaluate.retrieval import open_retriever

    if opts.clip is None:
        raise UserError("--setting retrieval needs --clip (the CLIP folder the database was built with)")
    retriever = open_retriever(
        db,
        db_path,
        opts.clip,
        detector=opts.detector,
        detector_text=opts.detector_text,
        device=opts.device,
        conf=opts.detector_conf,
        imgsz=opts.detector_imgsz,
    )
    return [[demo_of(db, h.concept, h.image) for h in row] for row in retriever.retrieve(images, k)]


def build_messages(demos: list[Demo], question: str, *, name_hint: bool = False) -> list[dict]:
    content: list[dict] = []
    for i, d in enumerate(demos, 1):
        content.append({"type": "image"})
        content.append({"type": "text", "text": f"{i}. Name: <{d.name}>, Info: {d.info}"})
    content.append({"type": "image"})
    content.append(
        {"type": "text", "text": f"This is the query image. {question}" + (f" {NAME_HINT}" if name_hint else "")}
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": content}]


def resolve_query_image(image: str, queries_file: Path) -> Path:
    p = Path(image)
    if p.is_absolute() or p.is_file():
        return p
    return queries_file.parent / p


def open_images(paths: list[Path], what: str = "query") -> list[Image.Image]:
    images, bad = [], []
    for p in paths:
        try:
            images.append(imageio.open_image(str(p)))
        except Exception:
            bad.append(p)
    if bad:
        raise UserError(f"{len(bad)} {what} image(s) missing or unreadable, e.g. {bad[0]}")
    return images


def check_model_folder(path: Path) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"model folder not found: {path}")
    if not (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
        raise UserError(f"{path}: not a model folder (no config.json) nor a LoRA adapter (no adapter_config.json)")
    return path


class QwenCaptioner:
    """A Qwen2.5-VL model (or base + LoRA adapter) with its processor, for greedy captioning."""

    def __init__(
        self, path: Path, *, base_model: Path | None = None, device: str | None = None, max_pixels: int = 1024 * 28 * 28
    ):
        import torch
        from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

        from curate.evaluate.retrieval import default_device

        path = check_model_folder(path)
        self.device = device or default_device()
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        adapter = (path / "adapter_config.json").is_file()
        base = path
        if adapter:
            declared = json.loads((path / "adapter_config.json").read_text()).get("base_model_name_or_path")
            base = Path(base_model) if base_model else Path(declared or "")
            if not (base / "config.json").is_file():
                raise UserError(
                    f"{path}: the adapter's base model {str(base)!r} is not a local model folder; pass --base-model"
                )
        try:
            model = Qwen2_5_VLForConditionalGeneration.from_pretrained(base, dtype=dtype)
            if adapter:
                from peft import PeftModel

                model = PeftModel.from_pretrained(model, path).merge_and_unload()
            has_processor = (path / "preprocessor_config.json").is_file() or (path / "processor_config.json").is_file()
            self.processor = AutoProcessor.from_pretrained(path if has_processor else base)
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot load a Qwen2.5-VL model from {path}: {str(exc).splitlines()[0]}") from None
        self.model = model.to(self.device).eval()
        ip = self.processor.image_processor
        ip.size = {"shortest_edge": min(ip.size.get("shortest_edge", 56 * 56), max_pixels), "longest_edge": max_pixels}
        self._torch = torch

    def caption(self, messages: list[dict], images: list[Image.Image], max_new_tokens: int) -> str:
        text = self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        inputs = self.processor(text=[text], images=images, return_tensors="pt").to(self.device)
        with self._torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        new = out[:, inputs["input_ids"].shape[1] :]
        return self.processor.batch_decode(new, skip_special_tokens=True, clean_up_tokenization_spaces=False)[0]


def _run_key(model: Path, db_path: Path, queries: dict, opts: CaptionOptions, k: int | None) -> str:
    """Identity of a captioning run: what makes two runs' records interchangeable."""
    from curate.evaluate.database import DB_FILE
    from curate.evaluate.retrieval import model_fingerprint

    db_file = Path(db_path) / DB_FILE if Path(db_path).is_dir() else Path(db_path)
    model = Path(model)
    ident = {
        "model": [str(model.resolve()), model_fingerprint(model)],
        "base_model": str(opts.base_model),
        "database": hashlib.sha256(db_file.read_bytes()).hexdigest(),
        "queries": queries,
        "setting": opts.setting,
        "top_k": k,
        "seed": opts.seed,
        "name_hint": opts.name_hint,
        "max_new_tokens": opts.max_new_tokens,
        "max_pixels": opts.max_pixels,
        "clip": str(opts.clip),
        "detector": str(opts.detector),
        "detector_text": str(opts.detector_text),
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()


def _resume(partial: Path, key: str, images: list[str]) -> list[CaptionRecord]:
    """Records already captioned by an interrupted run with the same key (empty when none)."""
    if not partial.is_file():
        return []
    lines = partial.read_text(encoding="utf-8").splitlines()
    try:
        header = json.loads(lines[0]) if lines else {}
    except json.JSONDecodeError:
        header = {}
    if header.get("repic_caption_partial") != key:
        print(f"note: ignoring {partial}: it belongs to a different run", file=sys.stderr)
        return []
    done = []
    for line in lines[1:]:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a line cut by the interruption
            break
        if len(done) >= len(images) or row[0] != images[len(done)]:
            break
        done.append(CaptionRecord(row[0], tuple(row[1]), row[2], row[3]))
    return done


def run_captioning(model: Path, db_path: Path, queries_file: Path, out: Path, opts: CaptionOptions) -> int:
    """Caption every query and write the caption file atomically; return the number of records.

    Finished records are appended to ``<out>.partial`` as they come; an interrupted run started
    again with the same model, database, queries and options continues where it stopped.
    """
    if opts.setting not in SETTINGS:
        raise UserError(f"unknown setting {opts.setting!r}; choose one of {', '.join(SETTINGS)}")
    out = Path(out)
    db = load_database(db_path)
    queries = load_queries(queries_file)
    k = (opts.top_k or default_top_k(queries)) if opts.setting == "retrieval" else None
    check_model_folder(model)
    key = _run_key(model, db_path, queries, opts, k)
    partial = out.with_name(out.name + ".partial")
    done = _resume(partial, key, list(queries))
    todo = dict(list(queries.items())[len(done) :])
    query_images = open_images([resolve_query_image(i, Path(queries_file)) for i in todo])
    if not todo:
        demos = []
    elif opts.setting == "skip-retrieval":
        demos = ground_truth_demos(db, todo)
    elif opts.setting == "wrong-demo":
        demos = wrong_demos(db, todo, opts.seed)
    else:
        demos = retrieved_demos(db, Path(db_path), query_images, opts, k)
    demo_images = {d.image: None for row in demos for d in row}
    opened = dict(zip(demo_images, open_images(list(demo_images), "database")))

    records = list(done)
    if todo:
        captioner = QwenCaptioner(model, base_model=opts.base_model, device=opts.device, max_pixels=opts.max_pixels)
        out.parent.mkdir(parents=True, exist_ok=True)
        with partial.open("w", encoding="utf-8") as log:
            log.write(json.dumps({"repic_caption_partial": key}) + "\n")
            for r in done:
                log.write(json.dumps(r.to_json(), ensure_ascii=False) + "\n")
            log.flush()
            items = list(zip(todo.items(), query_images, demos))
            for i, ((image, concepts), query, row) in enumerate(progress.track(items, "Captioning"), len(done)):
                question = EVAL_PROMPTS[i % len(EVAL_PROMPTS)]
                messages = build_messages(row, question, name_hint=opts.name_hint)
                text = captioner.caption(messages, [opened[d.image] for d in row] + [query], opts.max_new_tokens)
                records.append(CaptionRecord(image, tuple(concepts), text, question))
                log.write(json.dumps(records[-1].to_json(), ensure_ascii=False) + "\n")
                log.flush()
    write_records(out, records)
    partial.unlink(missing_ok=True)
    return len(records)
