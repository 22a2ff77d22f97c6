"""Tiny offline CLIP / YOLO builders and concept folders shared by the evaluate tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CONCEPTS = {
    "Anya": ("A young girl with pink hair.", "person"),
    "Bond": ("A white dog with a black bow tie.", "dog"),
    "Bluey": ("A light blue plush toy.", "plush toy"),
    "G_cat": ("A small ginger kitten.", "cat"),
    "Teapot": ("A colorful teapot.", None),
}


def build_tiny_clip(path: Path, *, projection_dim: int = 512, seed: int = 0) -> Path:
    """A random-weight CLIPModel with a word-level tokenizer, saved to ``path``."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, PreTrainedTokenizerFast

    words = "[PAD] [BOS] [EOS] [UNK] person dog cat plush toy object a the".split()
    cfg = CLIPConfig(
        text_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            vocab_size=len(words),
            max_position_embeddings=16,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
        ),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        ),
        projection_dim=projection_dim,
    )
    torch.manual_seed(seed)
    CLIPModel(cfg).save_pretrained(path)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(path)
    tok = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", bos_token="[BOS]", eos_token="[EOS]", unk_token="[UNK]"
    ).save_pretrained(path)
    return path


def make_image(seed: int, size=(64, 48)) -> Image.Image:
    """A distinct synthetic picture per seed: background colour, a shape, a stripe."""
    rng = np.random.default_rng(seed)
    im = Image.new("RGB", size, tuple(int(v) for v in rng.integers(0, 256, 3)))
    d = ImageDraw.Draw(im)
    x0, y0 = (int(v) for v in rng.integers(0, 20, 2))
    d.ellipse((x0, y0, x0 + 30, y0 + 24), fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    y = int(rng.integers(0, 40))
    d.rectangle((0, y, size[0], y + 4), fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    return im


def make_concept_folder(root: Path, images_per_concept: int = 2) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i, (name, (info, category)) in enumerate(CONCEPTS.items()):
        d = root / name
        d.mkdir()
        (d / "info.txt").write_text(info + "\n")
        if category:
            (d / "category.txt").write_text(category + "\n")
        for j in range(images_per_concept):
            make_image(100 * i + j).save(d / f"ref{j}.png")
    return root
