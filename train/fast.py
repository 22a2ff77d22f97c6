"""FastGRPOTrainer: TRL's GRPOTrainer without the wasted work on the frozen vision tower.

With LoRA on the language model only, the vision tower (ViT + merger) is frozen, yet the
stock TRL 1.16 path spends time on it three ways:

1. ``enable_input_require_grads()`` (TRL calls it for PEFT + gradient checkpointing) hooks
   *every* sub-model's input embedding, including the ViT's ``patch_embed``. The ViT output
   then requires grad, so every policy pass stores (or, checkpointed, recomputes) ViT
   activations and backward runs through all ViT blocks for gradients nobody uses.
2. The ViT blocks are gradient-checkpointed like the language model's layers.
3. Each image is encoded G times per pass (rows are repeated once per generation) and again
   in every pass of the step: rollout prefill, reference log-probs, policy forward(s).

Levers (each keeps the loss and the LoRA gradients the same; tests/train/test_fast.py checks
both against the stock trainer on a fixed batch):

* the ``patch_embed`` require-grads hook is removed; the language model's hook stays;
* ViT blocks are not checkpointed (only language-model layers are); optionally only every
  n-th language-model layer is checkpointed (``lm_checkpoint_every``; more memory, less recompute);
* image features are computed under ``no_grad`` once per distinct image (exact pixel
  equality) and reused by every pass of the same generation batch.

Speed on a GPU is measured by benchmarks/grpo_step.py, not assumed here.
"""

from __future__ import annotations

import logging

import torch
from transformers.modeling_outputs import BaseModelOutputWithPooling
from trl import GRPOTrainer

log = logging.getLogger(__name__)


def find_vision_owner(model) -> torch.nn.Module | None:
    """The module that owns ``visual`` and ``get_image_features`` (Qwen2.5-VL's inner model)."""
    for module in model.modules():
        if (
            hasattr(module, "visual")
            and hasattr(module, "get_image_features")
            and hasattr(module.visual, "patch_embed")
        ):
            return module
    return None


def remove_vision_grad_hooks(visual: torch.nn.Module) -> int:
    """Drop transformers' ``make_inputs_require_grads`` forward hooks on the ViT's patch embedding."""
    hooks = visual.patch_embed._forward_hooks
    doomed = [key for key, fn in hooks.items() if getattr(fn, "__name__", "") == "make_inputs_require_grads"]
    for key in doomed:
        del hooks[key]
    return len(doomed)


def checkpoint_every(model: torch.nn.Module, n: int) -> int:
    """Checkpoint only every ``n``-th language-model decoder layer; returns how many stay checkpointed."""
    layers = [
        m for name, m in model.named_modules() if name.endswith("language_model.layers") or name == "model.layers"
    ]
    kept = 0
    for layer_list in layers[:1]:
        for i, layer in enumerate(layer_list):
            if getattr(layer, "gradient_checkpointing", False):
                layer.gradient_checkpointing = i % n == 0
                kept += int(layer.gradient_checkpointing)
    return kept


def disable_vision_checkpointing(visual: torch.nn.Module) -> int:
    count = 0
    for module in visual.modules():
        if module is not visual and getattr(module, "gradient_checkpointing", False):
            module.gradient_checkpointing = False
            count += 1
    visual.gradient_checkpointing = False
    return count


class VisionFeatureCache:
    """Encode each distinct image once (exact pixel equality) and keep its features until :meth:`clear`."""

    def __init__(self, owner: torch.nn.Module, max_entries: int = 4096):
        self.owner, self.visual = owner, owner.visual
        self.max_entries = max_entries
        self.entries: dict[tuple, list[tuple[torch.Tensor, torch.Tensor]]] = {}  # key -> [(pixels, features)]
        self.encoded = 0  # images run through the ViT since creation (for tests and benchmarks)
        self.requested = 0

    def clear(self) -> None:
        self.entries.clear()

    def _lookup(self, key, pixels):
        for cached_pixels, features in self.entries.get(key, ()):
            if cached_pixels.shape == pixels.shape and torch.equal(cached_pixels, pixels):
                return features
        return None

    @torch.no_grad()
    def image_features(self, pixel_values, image_grid_thw=None, **kwargs):
        visual = self.visual
        # gradient_checkpointing_enable() (called by Trainer and around every generation) re-adds both
        remove_vision_grad_hooks(visual)
        disable_vision_checkpointing(visual)
        pixel_values = pixel_values.type(visual.dtype)
        merge = visual.spatial_merge_size**2
        grids = image_grid_thw.tolist()
        chunks = torch.split(pixel_values, [t * h * w for t, h, w in grids])
        # a cheap fingerprint narrows the candidates; torch.equal on the pixels decides
        rows = pixel_values.detach().sum(-1, dtype=torch.float32)
        prints = torch.stack(
            [
                torch.stack([r.sum(), (r * torch.arange(len(r), device=r.device, dtype=r.dtype)).sum()])
                for r in rows.split([t * h * w for t, h, w in grids])
            ]
        ).tolist()  # one device sync
        keys = [(tuple(g), a, b) for g, (a, b) in zip(grids, prints, strict=True)]
        features: list[torch.Tensor | None] = [self._lookup(k, c) for k, c in zip(keys, chunks, strict=True)]
        todo: list[int] = []  # first occurrence of each image that is not cached yet
        same_as: dict[int, int] = {}
        for i, feat in enumerate(features):
            if feat is not None:
                continue
            for j in todo:
                if keys[j] == keys[i] and torch.equal(chunks[j], chunks[i]):
                    same_as[i] = j
                    break
            else:
                todo.append(i)
        if todo:
            out = visual(torch.cat([chunks[i] for i in todo]), grid_thw=image_grid_thw[todo], **kwargs)
            sizes = [grids[i][0] * grids[i][1] * grids[i][2] // merge for i in todo]
            for i, feat in zip(todo, torch.split(out.pooler_output, sizes), strict=True):
                features[i] = feat
                if sum(len(v) for v in self.entries.values()) < self.max_entries:
                    self.entries.setdefault(keys[i], []).append((chunks[i], feat))
        for i, j in same_as.items():
            features[i] = features[j]
        self.encoded += len(todo)
        self.requested += len(grids)
        return BaseModelOutputWithPooling(pooler_output=tuple(features))


class FastGRPOTrainer(GRPOTrainer):
    """GRPOTrainer that treats the frozen vision tower as frozen (see the module docstring)."""

    def __init__(self, *args, lm_checkpoint_every: int = 1, **kwargs):
        super().__init__(*args, **kwargs)
        self.vision_cache: VisionFeatureCache | None = None
        self.lm_checkpoint_every = lm_checkpoint_every
        owner = find_vision_owner(self.model)
        if owner is None:
            log.warning("FastGRPOTrainer: no Qwen-style vision tower found; running the stock path")
            return
        if any(p.requires_grad for p in owner.visual.parameters()):
            log.warning("FastGRPOTrainer: the vision tower has trainable parameters; running the stock path")
            return
        self.vision_cache = VisionFeatureCache(owner)
        owner.get_image_features = self.vision_cache.image_features  # instance attribute shadows the method
        # Trainer and TRL call gradient_checkpointing_enable() at train start and after every generation;
        # it re-adds the hooks and re-checkpoints every block, so the levers are re-applied after each call.
        from transformers import PreTrainedModel

        base = next(m for m in self.model.modules() if isinstance(m, PreTrainedModel))  # PEFT delegates to it
        enable = base.gradient_checkpointing_enable

        def gradient_checkpointing_enable(*args, **kwargs):
            enable(*args, **kwargs)
            self._apply_levers()

        base.gradient_checkpointing_enable = gradient_checkpointing_enable
        self._apply_levers()

    def _apply_levers(self) -> None:
        visual = self.vision_cache.visual
        remove_vision_grad_hooks(visual)
        disable_vision_checkpointing(visual)
        if self.lm_checkpoint_every > 1:
            checkpoint_every(self.model, self.lm_checkpoint_every)

    def _generate_and_score_completions(self, inputs):
        if self.vision_cache is not None:
            self.vision_cache.clear()  # a new generation batch: new images
        return super()._generate_and_score_completions(inputs)
