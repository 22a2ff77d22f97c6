"""Offline Qwen2.5-VL builders: a tokenizer, a processor and random-weight models, no download.

``build_tiny_qwen(path)`` saves a tiny random Qwen2.5-VL (2 layers, hidden 32) with its
tokenizer, processor and generation config to ``path`` so that ``from_pretrained(path)``,
``AutoProcessor.from_pretrained(path)`` and TRL's model-from-path loading work offline.
``build_tokenizer(real_layout=True)`` reproduces the released Qwen2.5-VL special-token ids
(``<|endoftext|>`` = 151643 ... ``<|video_pad|>`` = 151656) for full-size benchmarks.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
VISION_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>")
REAL_FIRST_SPECIAL_ID = 151643  # <|endoftext|> in the released tokenizer


def chat_template() -> str:
    """The Qwen2.5-VL chat template as shipped by TRL (read from its package data)."""
    return resources.files("trl").joinpath("chat_templates/qwen2_5_vl.jinja").read_text(encoding="utf-8")


def build_tokenizer(real_layout: bool = False):
    """A byte-level BPE Qwen2 tokenizer (no merges: one token per byte) with Qwen's special tokens.

    ``real_layout`` pads the vocabulary with never-produced filler tokens so that the special
    tokens get the released ids and embeddings have the released shapes.
    """
    from tokenizers import AddedToken, pre_tokenizers
    from transformers import Qwen2Tokenizer

    vocab: dict[str, int] = {}
    for ch in pre_tokenizers.ByteLevel.alphabet():
        vocab[ch] = len(vocab)
    if real_layout:
        while len(vocab) < REAL_FIRST_SPECIAL_ID:
            vocab[f"<filler_{len(vocab)}>"] = len(vocab)
    for t in QWEN_SPECIAL_TOKENS:  # in the vocabulary at their final ids; marked special below
        vocab[t] = len(vocab)
    tok = Qwen2Tokenizer(
        vocab=vocab,
        merges=[],
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
    tok.add_tokens([AddedToken(t, special=True, normalized=False) for t in QWEN_SPECIAL_TOKENS], special_tokens=True)
    tok.chat_template = chat_template()
    ids = tok.convert_tokens_to_ids(list(QWEN_SPECIAL_TOKENS))
    if real_layout:
        assert ids == list(range(REAL_FIRST_SPECIAL_ID, REAL_FIRST_SPECIAL_ID + len(QWEN_SPECIAL_TOKENS))), ids
    assert len(set(ids)) == len(ids), ids
    return tok


def build_processor(tok, *, min_pixels: int = 4 * 28 * 28, max_pixels: int = 16 * 28 * 28):
    """A Qwen2.5-VL processor around ``tok``; pixel limits passed as an explicit ``size`` (transformers#48917)."""
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    size = {"shortest_edge": min_pixels, "longest_edge": max_pixels}
    image_processor = Qwen2VLImageProcessor(size=size, patch_size=14, merge_size=2, temporal_patch_size=2)
    assert image_processor.size["longest_edge"] == max_pixels
    video_processor = Qwen2VLVideoProcessor(size=dict(size))
    return Qwen2_5_VLProcessor(
        image_processor=image_processor, tokenizer=tok, video_processor=video_processor, chat_template=chat_template()
    )


def special_ids(tok) -> dict[str, int]:
    return dict(zip(QWEN_SPECIAL_TOKENS, tok.convert_tokens_to_ids(list(QWEN_SPECIAL_TOKENS)), strict=True))


def tiny_config(tok):
    from transformers import Qwen2_5_VLConfig

    ids = special_ids(tok)
    vocab = (len(tok) + 15) // 16 * 16
    return Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=vocab,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=4096,
            rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 1, 1]},
            bos_token_id=ids["<|endoftext|>"],
            eos_token_id=ids["<|im_end|>"],
            pad_token_id=ids["<|endoftext|>"],
            tie_word_embeddings=True,
        ),
        vision_config=dict(
            depth=2,
            hidden_size=32,
            intermediate_size=64,
            num_heads=4,
            out_hidden_size=32,
            fullatt_block_indexes=[1],
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            window_size=112,
        ),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )


def generation_config(tok):
    from transformers import GenerationConfig

    ids = special_ids(tok)
    return GenerationConfig(
        eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
        pad_token_id=ids["<|endoftext|>"],
        suppress_tokens=[ids[t] for t in VISION_TOKENS],  # a random model would otherwise sample them
    )


def build_tiny_qwen(path: Path, seed: int = 0) -> Path:
    """Save a tiny random-weight Qwen2.5-VL with tokenizer + processor to ``path``; returns ``path``."""
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer()
    processor = build_processor(tok)
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(tiny_config(tok))
    model.generation_config = generation_config(tok)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path
