"""`repic eval grounding`, `repic db build` and `repic caption`.

Only the standard library, typer and rich are imported here; torch, transformers and
ultralytics load inside the commands that need them.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from curate.errors import UserError

eval_app = typer.Typer(help="Evaluate personalized captions.", no_args_is_help=True)
db_app = typer.Typer(help="Personal concept databases for retrieval.", no_args_is_help=True)

_out = Console(highlight=False, soft_wrap=True)
_err = Console(stderr=True, highlight=False, soft_wrap=True)


class OutputFormat(str, Enum):
    table = "table"
    json = "json"


class Setting(str, Enum):
    skip_retrieval = "skip-retrieval"
    retrieval = "retrieval"
    wrong_demo = "wrong-demo"


@eval_app.command("grounding")
def grounding_cmd(
    captions: Path = typer.Argument(..., help="Caption file: JSON list of [image_path, [concepts], caption, prompt]."),
    case_sensitive: bool = typer.Option(
        False, "--case-sensitive", help="Match names exactly (the 2-concept protocol); default lowercases."
    ),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", help="table or json."),
    skip_bad: bool = typer.Option(
        False, "--skip-bad", help="Skip malformed records (each is reported) instead of failing."
    ),
) -> None:
    """Personal-grounding precision / recall / F1 (percent) of a caption file."""
    from curate.evaluate.grounding import score
    from curate.evaluate.records import load_records

    records, bad = load_records(captions, skip_bad=skip_bad)
    for b in bad:
        _err.print(f"skipped record {b.index}: {b.reason}")
    if not records:
        raise UserError(f"{captions}: no valid records to score")
    result = score(records, case_sensitive=case_sensitive)
    if fmt is OutputFormat.json:
        typer.echo(json.dumps(result.summary()))
        return
    table = Table(title=f"Personal grounding: {captions.name}" + (" (case-sensitive)" if case_sensitive else ""))
    for col in ("Precision", "Recall", "F1", "Records", "Targets", "Correct", "MISS"):
        table.add_column(col, justify="right")
    table.add_row(
        f"{result.precision:.1f}",
        f"{result.recall:.1f}",
        f"{result.f1:.1f}",
        str(result.records),
        str(result.targets),
        str(result.correct),
        str(result.missed),
    )
    _out.print(table)
    if bad:
        _out.print(f"{len(bad)} malformed record(s) skipped")


@db_app.command("build")
def db_build_cmd(
    source: Path = typer.Argument(
        ...,
        help="A folder with one sub-folder per concept (images, info.txt, optional category.txt), or a RAP/RePIC database.json.",
    ),
    out: Path = typer.Option(..., "--out", help="Output database folder."),
    clip: Path = typer.Option(..., "--clip", help="Local transformers CLIP model folder used for the embedding index."),
    device: str = typer.Option(None, "--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)."),
    batch_size: int = typer.Option(32, "--batch-size", min=1),
) -> None:
    """Validate a personal database and write database.json plus its CLIP embedding index."""
    from curate.evaluate.database import build_database

    report = build_database(source, out, clip, device=device, batch_size=batch_size)
    _out.print(
        f"wrote {report.out}: {report.concepts} concepts, {report.images} images, {len(report.quarantined)} quarantined"
    )
    for q in report.quarantined[:10]:
        _err.print(f"quarantined {q['concept']}" + (f" {q['image']}" if q["image"] else "") + f": {q['reason']}")
    if len(report.quarantined) > 10:
        _err.print(f"... {len(report.quarantined) - 10} more in {report.out / 'quarantine.json'}")


@db_app.command("retrieve")
def db_retrieve_cmd(
    db: Path = typer.Argument(..., help="Database folder from `repic db build`."),
    images: list[Path] = typer.Argument(None, help="Query images (or use --queries)."),
    queries: Path = typer.Option(
        None, "--queries", help="Query file {image_path: [concepts]}: retrieve for each of its images."
    ),
    clip: Path = typer.Option(..., "--clip", help="The CLIP folder the database was built with."),
    detector: Path = typer.Option(
        None, "--detector", help="YOLO / YOLO-World weights file; without it only the whole image is a candidate."
    ),
    detector_text: Path = typer.Option(
        None,
        "--detector-text",
        help="CLIP folder whose text tower sets YOLO-World's classes to the database categories.",
    ),
    top_k: int = typer.Option(
        None, "--top-k", min=1, help="Concepts per image (default 2, or 4 when a query has more than 2 concepts)."
    ),
    out: Path = typer.Option(
        None,
        "--out",
        help="With --queries: write caption records whose caption is the retrieved names (score them with `repic eval grounding`).",
    ),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", help="table or json."),
    device: str = typer.Option(None, "--device"),
) -> None:
    """Top-k database concepts for query images (detector regions + whole image, CLIP, Euclidean distance)."""
    from curate.evaluate.caption import open_images, resolve_query_image
    from curate.evaluate.database import load_database
    from curate.evaluate.demos import default_top_k
    from curate.evaluate.records import CaptionRecord, load_queries, write_records
    from curate.evaluate.retrieval import open_retriever

    if bool(images) == bool(queries):
        raise UserError("give query images or --queries, not both and not neither")
    if out is not None and queries is None:
        raise UserError("--out needs --queries (the records carry the ground-truth concepts)")
    truth = load_queries(queries) if queries else {str(p): [] for p in images}
    paths = [resolve_query_image(i, queries) for i in truth] if queries else list(images)
    k = top_k or (default_top_k(truth) if queries else 2)
    database = load_database(db)
    pictures = open_images(paths)
    hits = open_retriever(database, db, clip, detector=detector, detector_text=detector_text, device=device).retrieve(
        pictures, k
    )
    if out is not None:
        records = [
            CaptionRecord(i, tuple(c), " ".join(h.concept for h in row), f"retrieval top-{k}")
            for (i, c), row in zip(truth.items(), hits)
        ]
        write_records(out, records)
    if fmt is OutputFormat.json:
        typer.echo(
            json.dumps(
                {
                    i: [{"concept": h.concept, "image": h.image, "distance": h.distance} for h in row]
                    for i, row in zip(truth, hits)
                }
            )
        )
        return
    table = Table(title=f"Top-{k} concepts")
    table.add_column("Image")
    table.add_column("Concepts (distance)")
    for i, row in zip(truth, hits):
        table.add_row(i, ", ".join(f"{h.concept} ({h.distance:.3f})" for h in row))
    _out.print(table)
    if out is not None:
        _out.print(f"wrote {len(hits)} records to {out}")


def caption_cmd(
    model: Path = typer.Option(
        ..., "--model", help="Qwen2.5-VL model folder, or a LoRA adapter folder from `repic train`."
    ),
    db: Path = typer.Option(..., "--db", help="Database folder from `repic db build`."),
    queries: Path = typer.Option(..., "--queries", help="Query file: JSON object {image_path: [concepts]}."),
    setting: Setting = typer.Option(..., "--setting", help="skip-retrieval, retrieval or wrong-demo."),
    out: Path = typer.Option(..., "--out", help="Caption file to write."),
    base_model: Path = typer.Option(
        None,
        "--base-model",
        help="Base model folder for a LoRA adapter (default: the adapter's base_model_name_or_path).",
    ),
    clip: Path = typer.Option(None, "--clip", help="CLIP folder (retrieval; the one the database was built with)."),
    detector: Path = typer.Option(
        None,
        "--detector",
        help="YOLO / YOLO-World weights file (retrieval); without it only the whole image is a candidate.",
    ),
    detector_text: Path = typer.Option(
        None,
        "--detector-text",
        help="CLIP folder whose text tower gives YOLO-World the database categories (512-d, e.g. clip-vit-base-patch32).",
    ),
    top_k: int = typer.Option(
        None,
        "--top-k",
        min=1,
        help="Concepts retrieved per query (default: 2, or 4 when a query has more than 2 concepts).",
    ),
    name_hint: bool = typer.Option(
        False, "--name-hint", help="Append the zero-shot hint 'Output the final answer including its name.'"
    ),
    max_new_tokens: int = typer.Option(1024, "--max-new-tokens", min=1),
    max_pixels: int = typer.Option(1024 * 28 * 28, "--max-pixels", min=28 * 28),
    seed: int = typer.Option(0, "--seed", help="Seed of the wrong-demo concept choice."),
    device: str = typer.Option(None, "--device", help="cpu, cuda ... (default: cuda when available)."),
) -> None:
    """Generate personalized captions with a Qwen2.5-VL model (records for `repic eval grounding`)."""
    from curate.evaluate.caption import CaptionOptions, run_captioning

    opts = CaptionOptions(
        setting=setting.value,
        base_model=base_model,
        clip=clip,
        detector=detector,
        detector_text=detector_text,
        top_k=top_k,
        name_hint=name_hint,
        max_new_tokens=max_new_tokens,
        max_pixels=max_pixels,
        seed=seed,
        device=device,
    )
    n = run_captioning(model, db, queries, out, opts)
    _out.print(f"wrote {n} caption records to {out}")


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")
    app.add_typer(db_app, name="db")
    app.command("caption")(caption_cmd)
