"""Model architectures, image sizes and rows of the GRPO step benchmark (benchmarks/grpo_step.py).

* ``real_config``: the released Qwen2.5-VL-7B/3B hyperparameters (random weights on the GPU).
* ``proxy_config``: a small Qwen2.5-VL (4 layers, hidden 256) for the CPU proxy, which keeps the
  real *token shapes*: a 448x448 query (256 image tokens), ~70% prompt tokens, G=8, 128-token completions.
* ``REPIC_2K_SIZES``: image sizes as a repic-2k build stores them (COCO/RefCOCO photos at the
  recipe's pixel budget, min 3136 / max 12,845,056, i.e. native size rounded to multiples of 28;
  object crops of varied sizes). ``sizes_from_build`` reads the sizes of a real build instead.
"""

from __future__ import annotations

import io
import os
import platform
from datetime import UTC, datetime
from pathlib import Path

ARCH = {  # released config.json values (see ../shared/reference/trl-grpo-vlm.md)
    "7b": {
        "hidden_size": 3584,
        "intermediate_size": 18944,
        "num_hidden_layers": 28,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "tie_word_embeddings": False,
        "vocab_size": 152064,
    },
    "3b": {
        "hidden_size": 2048,
        "intermediate_size": 11008,
        "num_hidden_layers": 36,
        "num_attention_heads": 16,
        "num_key_value_heads": 2,
        "tie_word_embeddings": True,
        "vocab_size": 151936,
    },
}
REPIC_2K_PIXELS = (3136, 12845056)
# (query, reference crops) per task, cycling oct, vlt, ict_single, ict_multi: typical COCO photo sizes and crops
REPIC_2K_SIZES = [
    ((644, 476), [(224, 168)]),
    ((644, 420), []),
    ((476, 644), [(336, 252)]),
    ((616, 616), [(168, 224), (112, 84)]),
]
CPU_PROXY_SIZES = [
    ((448, 448), [(112, 112)]),
    ((448, 448), []),
    ((448, 448), [(112, 112)]),
    ((448, 448), [(112, 112), (112, 112)]),
]
TINY_SIZES = [((112, 84), [(56, 56)]), ((112, 84), []), ((112, 84), [(56, 56)]), ((112, 84), [(56, 56), (56, 56)])]


def _ids(tok) -> dict[str, int]:
    from tests.support.tiny_qwen import special_ids

    return special_ids(tok)


def _config(tok, text: dict, vision: dict, tie: bool):
    from transformers import Qwen2_5_VLConfig

    ids = _ids(tok)
    return Qwen2_5_VLConfig(
        text_config=dict(
            **text,
            max_position_embeddings=128000,
            rms_norm_eps=1e-6,
            tie_word_embeddings=tie,
            bos_token_id=ids["<|endoftext|>"],
            eos_token_id=ids["<|im_end|>"],
            pad_token_id=ids["<|endoftext|>"],
        ),
        vision_config=dict(
            **vision,
            out_hidden_size=text["hidden_size"],
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            window_size=112,
            tokens_per_second=2,
        ),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=tie,
    )


def real_config(size: str, tok):
    arch = dict(ARCH[size])
    tie = arch.pop("tie_word_embeddings")
    rope = {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]}
    vision = {
        "depth": 32,
        "hidden_size": 1280,
        "intermediate_size": 3420,
        "num_heads": 16,
        "fullatt_block_indexes": [7, 15, 23, 31],
    }
    return _config(tok, {**arch, "rope_parameters": rope}, vision, tie)


def proxy_config(tok):
    text = {
        "vocab_size": (len(tok) + 15) // 16 * 16,
        "hidden_size": 256,
        "intermediate_size": 768,
        "num_hidden_layers": 4,
        "num_attention_heads": 8,
        "num_key_value_heads": 2,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [4, 6, 6]},
    }
    vision = {"depth": 2, "hidden_size": 128, "intermediate_size": 256, "num_heads": 4, "fullatt_block_indexes": [1]}
    return _config(tok, text, vision, True)


def sizes_from_build(folder: str | Path, limit: int = 64) -> list[tuple[tuple[int, int], list[tuple[int, int]]]]:
    """(query size, crop sizes) of the first ``limit`` rows of a build folder (query = last image)."""
    import pyarrow.parquet as pq
    from PIL import Image

    out = []
    for shard in sorted(Path(folder, "data").glob("*.parquet")):
        for images in pq.read_table(shard, columns=["images"]).column("images").to_pylist():
            sizes = [Image.open(io.BytesIO(im["bytes"])).size for im in images]
            out.append((sizes[-1], sizes[:-1]))
            if len(out) >= limit:
                return out
    if not out:
        raise SystemExit(f"{folder}: no rows in data/*.parquet")
    return out


def make_rows(n: int, sizes) -> list[dict]:
    """RePIC-shaped rows cycling over the four tasks and ``sizes`` (references first, query last)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)

    def img(size):
        return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))

    im, tx = {"type": "image", "text": None}, lambda s: {"type": "text", "text": s}
    tasks = [
        ("oct", "Is <bo> in this image? Answer yes or no.", '"yes"'),
        ("vlt", "Give the bounding box [x1, y1, x2, y2] of the person on the left.", "[10, 20, 200, 300]"),
        ("ict_single", "This is <al>. Describe the image in detail using the name.", '"<al>"'),
        ("ict_multi", "These are <al> and <bo>. Describe the image using both names.", '["<al>", "<bo>"]'),
    ]
    rows = []
    for i in range(n):
        task, text, solution = tasks[i % 4]
        query, crops = sizes[i % len(sizes)]
        content = [im] * (len(crops) + 1) + [tx(text)]
        rows.append(
            {
                "id": f"b{i}",
                "task": task,
                "prompt": [{"role": "user", "content": content}],
                "images": [img(c) for c in crops] + [img(query)],
                "solution": solution,
                "names": [],
                "source": "bench",
                "source_ids": [],
                "template": f"{task}.bench",
            }
        )
    return rows


def environment(s: dict) -> dict:
    import torch
    import transformers
    import trl

    env = {
        "device": "cpu: " + (platform.processor() or platform.machine()) + f", {os.cpu_count()} cores",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
        "python": platform.python_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    if s["device"] == "cuda":
        env["device"] = torch.cuda.get_device_name(0)
    return env


def prompt_fraction(processor, dataset, completion: int) -> float:
    """Mean share of prompt tokens in a row (prompt + completion), as the processor expands the images."""
    fractions = []
    for row in dataset.select(range(min(4, len(dataset)))):
        from trl.data_utils import prepare_multimodal_messages

        messages = prepare_multimodal_messages(row["prompt"], images=row["images"])
        n = len(
            processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)[
                "input_ids"
            ][0]
        )
        fractions.append(n / (n + completion))
    return sum(fractions) / len(fractions)
