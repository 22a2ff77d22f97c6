"""Shared-prefix GRPO forward: each group's prompt runs once in the policy and reference passes, not G times.

All G completions of a group share the prompt, and at RePIC's shapes the prompt (mostly image
tokens) is about 70% of every row. Stock TRL runs ``B x G`` rows of ``prompt + completion``.
:class:`SharedPrefixGRPOTrainer` packs each group into one row instead::

    [prompt[:-1] | prompt[-1], c1[:-1] | prompt[-1], c2[:-1] | ... | prompt[-1], cG[:-1]]

with a tree attention mask: prompt tokens attend causally to the prompt; the tokens of segment
``j`` attend to the prompt and causally within segment ``j`` only. Each segment starts with a
copy of the prompt's last token at that token's own position, whose hidden state predicts the
completion's first token, so every segment scores its completion's ``C`` tokens (through TRL's
fused LM head with pre-shifted labels). Positions are the 3-D mRoPE positions the stock forward
would use (``get_rope_index`` on the unpacked rows). Padding keys stay masked as in stock.
Gradients flow into the prompt's keys and values from all G segments, so the loss and the LoRA
gradients equal stock TRL's up to float rounding (tests/train/test_prefix.py).

TRL shuffles each generation batch before splitting it into micro-batches, which scatters a group's
rows over the micro-batches (with the paper's 8 completions x accumulation 2, each micro-step would
hold rows of both prompts). This trainer keeps the rows in TRL's sampler order instead, so each
micro-batch holds whole groups, where that cannot change the optimizer step: every loss type whose
micro-batch losses add up to the same step loss for any split into equal micro-batches (all but
``bnpo``, whose token mean is per micro-batch) and no per-micro-batch entropy mask. Rows of a group
are also found wherever they sit, so a shuffled batch still shares what it can.

One difference is stated: with LoRA dropout > 0, stock TRL draws a dropout mask per prompt copy,
this path one per group; every completion's loss has the same distribution, so the expected
loss and gradient are the same.

Falls back to the stock forward (counted in ``prefix_stats``) for what it does not cover: no
images, attention kernels other than sdpa/eager (flash-attention takes no tree mask), MoE aux
losses, non-Qwen vision inputs.
"""

from __future__ import annotations

import logging

import torch
from trl.trainer.utils import split_pixel_values_by_grid, split_tensor_dict, unsplit_pixel_values_by_grid

from train.fast import FastGRPOTrainer

log = logging.getLogger(__name__)
SUPPORTED_ATTENTION = ("sdpa", "eager")


def find_rope_owner(model) -> torch.nn.Module | None:
    for module in model.modules():
        if hasattr(module, "get_rope_index") and hasattr(module, "language_model"):
            return module
    return None


def group_rows(prompt_ids, prompt_mask, pixel_chunks) -> list[list[int]]:
    """Rows with the same prompt tokens, padding and pixels, in first-seen order.

    TRL repeats a prompt G times in a row, then shuffles the generation batch before splitting it
    into micro-batches, so a group's rows need not be adjacent."""
    groups: list[list[int]] = []
    for i in range(prompt_ids.size(0)):
        for group in groups:
            j = group[0]
            if (
                torch.equal(prompt_ids[i], prompt_ids[j])
                and torch.equal(prompt_mask[i], prompt_mask[j])
                and pixel_chunks[i].shape == pixel_chunks[j].shape
                and torch.equal(pixel_chunks[i], pixel_chunks[j])
            ):
                group.append(i)
                break
        else:
            groups.append([i])
    return groups


def pack_groups(input_ids, attention_mask, positions, completion_length, groups, pad_id):
    """Packed rows for ``groups``: ids (R, L), positions (3, R, L), shift labels (R, L), allowed (R, L, L) and
    the (row, start) of each original row's C scored positions."""
    c = completion_length
    p = input_ids.size(1) - c
    rows, where = [], {}
    for g, members in enumerate(groups):
        first = members[0]
        real = attention_mask[first, :p].bool()
        prompt_ids, prompt_pos = input_ids[first, :p][real], positions[:, first, :p][:, real]
        n = prompt_ids.numel()
        ids, pos, labels, valid, seg = [prompt_ids[:-1]], [prompt_pos[:, :-1]], [], [], []
        labels.append(torch.full((n - 1,), -100, dtype=input_ids.dtype, device=input_ids.device))
        valid.append(torch.ones(n - 1, dtype=torch.bool, device=input_ids.device))
        seg.append(torch.full((n - 1,), -1, dtype=torch.long, device=input_ids.device))
        for j, r in enumerate(members):
            comp, comp_mask = input_ids[r, p:], attention_mask[r, p:].bool()
            ids.append(torch.cat([prompt_ids[-1:], comp[:-1]]))
            pos.append(torch.cat([prompt_pos[:, -1:], positions[:, r, p : p + c - 1]], dim=1))
            labels.append(comp.masked_fill(~comp_mask, -100))
            valid.append(torch.cat([comp_mask.new_ones(1), comp_mask[:-1]]))
            seg.append(torch.full((c,), j, dtype=torch.long, device=input_ids.device))
            where[r] = (g, n - 1 + j * c)
        rows.append((torch.cat(ids), torch.cat(pos, dim=1), torch.cat(labels), torch.cat(valid), torch.cat(seg)))
    length = max(r[0].numel() for r in rows)
    device = input_ids.device
    out_ids = torch.full((len(rows), length), pad_id, dtype=input_ids.dtype, device=device)
    out_pos = torch.zeros((3, len(rows), length), dtype=positions.dtype, device=device)
    out_labels = torch.full((len(rows), length), -100, dtype=input_ids.dtype, device=device)
    allowed = torch.zeros((len(rows), length, length), dtype=torch.bool, device=device)
    causal = torch.ones(length, length, dtype=torch.bool, device=device).tril()
    for i, (ids, pos, labels, valid, seg) in enumerate(rows):
        m = ids.numel()
        out_ids[i, :m], out_pos[:, i, :m], out_labels[i, :m] = ids, pos, labels
        same = (seg[None, :] == -1) | (seg[None, :] == seg[:, None])  # key is prompt, or the query's own segment
        allowed[i, :m, :m] = same & causal[:m, :m] & valid[None, :]
        allowed[i, m:, 0] = True  # padding queries look at one real key (no all-masked softmax rows)
    index = torch.tensor([where[r] for r in range(input_ids.size(0))], device=device)
    return out_ids, out_pos, out_labels, allowed, index


class SharedPrefixGRPOTrainer(FastGRPOTrainer):
    """FastGRPOTrainer whose log-prob passes run each group's prompt once (see the module docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.prefix_stats = {"calls": 0, "rows": 0, "packed_rows": 0, "tokens": 0, "stock_tokens": 0, "fallbacks": 0}
        self.rope_owner = find_rope_owner(self.model)
        attention = getattr(self.model.config, "_attn_implementation", None)
        self.prefix_ok = self.rope_owner is not None and attention in SUPPORTED_ATTENTION
        if not self.prefix_ok:
            log.warning("SharedPrefixGRPOTrainer: attention %r or model not supported; stock forward", attention)

    def keeps_groups_whole(self) -> bool:
        """Whether skipping TRL's shuffle leaves every optimizer step as it was (see the module docstring)."""
        return self.loss_type != "bnpo" and (self.args.top_entropy_quantile or 1.0) >= 1.0

    def _prepare_inputs(self, generation_batch):
        if not self.model.training or not self.keeps_groups_whole():
            return super()._prepare_inputs(generation_batch)
        if self._step % (self.args.steps_per_generation * self.num_iterations) == 0 or self._buffered_inputs is None:
            batch = split_pixel_values_by_grid(self._generate_and_score_completions(generation_batch))
            batches = split_tensor_dict(batch, self.args.steps_per_generation)  # sampler order: G rows per prompt
            self._buffered_inputs = [unsplit_pixel_values_by_grid(b) for b in batches]
        return self._buffered_inputs[self._step % self.args.steps_per_generation]

    def _get_per_token_logps_and_entropies(
        self,
        model,
        input_ids,
        attention_mask,
        logits_to_keep,
        batch_size=None,
        compute_entropy=False,
        compute_aux_loss=False,
        pixel_values=None,
        image_grid_thw=None,
        num_images=None,
        mm_token_type_ids=None,
        **rest,
    ):
        if (
            not self.prefix_ok
            or compute_aux_loss
            or any(v is not None for v in rest.values())
            or pixel_values is None
            or image_grid_thw is None
            or mm_token_type_ids is None
            or input_ids.size(1) <= logits_to_keep
        ):
            self.prefix_stats["fallbacks"] += 1
            return super()._get_per_token_logps_and_entropies(
                model,
                input_ids,
                attention_mask,
                logits_to_keep,
                batch_size,
                compute_entropy,
                compute_aux_loss,
                pixel_values=pixel_values,
                image_grid_thw=image_grid_thw,
                num_images=num_images,
                mm_token_type_ids=mm_token_type_ids,
                **rest,
            )
        batch_size = batch_size or input_ids.size(0)
        pixel_rows = torch.split(image_grid_thw.prod(-1), num_images)
        pixel_rows = [int(s.sum()) for s in pixel_rows]
        pixel_chunks = list(torch.split(pixel_values, pixel_rows))
        grid_chunks = list(torch.split(image_grid_thw, num_images))
        logps, entropies = [], []
        for start in range(0, input_ids.size(0), batch_size):
            end = min(start + batch_size, input_ids.size(0))
            lp, ent = self._packed_pass(
                model,
                input_ids[start:end],
                attention_mask[start:end],
                logits_to_keep,
                compute_entropy,
                pixel_chunks[start:end],
                grid_chunks[start:end],
                mm_token_type_ids[start:end],
            )
            logps.append(lp)
            entropies.append(ent)
        return torch.cat(logps), (torch.cat(entropies) if compute_entropy else None), None

    def _packed_pass(self, model, ids, mask, c, compute_entropy, pixel_chunks, grid_chunks, mm_types):
        p = ids.size(1) - c
        grid = torch.cat(grid_chunks)
        with torch.no_grad():
            positions, _ = self.rope_owner.get_rope_index(ids, mm_types, image_grid_thw=grid, attention_mask=mask)
        groups = group_rows(ids[:, :p], mask[:, :p], pixel_chunks)
        pad_id = self.processing_class.tokenizer.pad_token_id or 0
        packed, pos, labels, allowed, index = pack_groups(ids, mask, positions, c, groups, pad_id)
        firsts = [g[0] for g in groups]
        pixels = torch.cat([pixel_chunks[i] for i in firsts])
        grids = torch.cat([grid_chunks[i] for i in firsts])
        if self.model.config._attn_implementation == "sdpa":
            attn = allowed[:, None]
        else:
            dtype = self.accelerator.unwrap_model(model).dtype
            attn = torch.zeros(allowed.shape, dtype=dtype, device=ids.device).masked_fill(
                ~allowed, torch.finfo(dtype).min
            )[:, None]
        with self.accelerator.autocast():
            out = model(
                input_ids=packed,
                attention_mask={"full_attention": attn},
                position_ids=pos,
                pixel_values=pixels,
                image_grid_thw=grids,
                shift_labels=labels,
                fused_lm_head=True,
            )
        cols = index[:, 1:2] + torch.arange(c, device=ids.device)
        rows = index[:, 0:1].expand(-1, c)
        stats = self.prefix_stats
        stats["calls"] += 1
        stats["rows"] += ids.size(0)
        stats["packed_rows"] += packed.size(0)
        stats["tokens"] += packed.numel()
        stats["stock_tokens"] += ids.numel()
        entropy = out.entropy[rows, cols] if compute_entropy else None
        return out.log_probs[rows, cols], entropy
