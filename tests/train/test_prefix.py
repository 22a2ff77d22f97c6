"""The shared-prefix forward computes what the stock GRPOTrainer computes: same loss, same LoRA gradients."""

import pytest
import torch
from trl.trainer.utils import shuffle_sequence_dict, split_pixel_values_by_grid, unsplit_pixel_values_by_grid

from tests.support.trainbuilds import SMALL, completion_checksum, lora_b, paired_trainers
from train.config import load_config
from train.prefix import SharedPrefixGRPOTrainer, group_rows
from train.trainer import run_training


@pytest.fixture(params=[1, 2], ids=["ckpt-all", "ckpt-every-2"])
def pair(request, tiny_model, tiny_build, tmp_path):
    """A stock and a shared-prefix trainer with identical non-zero LoRA weights; 2 groups of G=2 per micro-batch.

    LoRA dropout is 0: with dropout the two paths draw different masks (see train/prefix.py)."""
    overrides = {
        **SMALL,
        "per_device_train_batch_size": 4,
        "max_steps": 1,
        "lora.dropout": 0.0,
        "max_completion_length": 12,
    }
    return paired_trainers("shared_prefix", overrides, request.param, tiny_model, tiny_build, tmp_path)


def test_same_reference_logps_loss_and_lora_gradients_as_stock(pair):
    stock, shared, batch = pair
    assert type(shared) is SharedPrefixGRPOTrainer and shared.prefix_ok
    generated = []
    for trainer in (stock, shared):
        torch.manual_seed(123)
        generated.append(trainer._generate_and_score_completions(batch))
    a, b = generated
    assert torch.equal(a["completion_ids"], b["completion_ids"])
    assert a["prompt_mask"].sum(1).unique().numel() > 1  # prompts of different lengths: left padding is exercised
    # the reference pass (adapter disabled) ran packed: 4 rows in 2 packed rows, each prompt once
    assert shared.prefix_stats["rows"] == 4 and shared.prefix_stats["packed_rows"] == 2
    assert shared.prefix_stats["tokens"] < shared.prefix_stats["stock_tokens"] and shared.prefix_stats["fallbacks"] == 0
    torch.testing.assert_close(b["ref_per_token_logps"], a["ref_per_token_logps"], rtol=1e-5, atol=1e-5)
    assert a["advantages"].abs().sum() > 0  # the test reward varies within groups
    # a random model never samples the end token: make two completions end early, as TRL pads them
    a = dict(a)
    a["completion_mask"], a["completion_ids"] = a["completion_mask"].clone(), a["completion_ids"].clone()
    for row, end in ((1, 5), (2, 9)):
        a["completion_mask"][row, end:] = 0
        a["completion_ids"][row, end:] = stock.processing_class.tokenizer.pad_token_id
    # as in training, the rows go through TRL's shuffle of a generation batch: a group's rows are not adjacent
    torch.manual_seed(5)
    a = unsplit_pixel_values_by_grid(shuffle_sequence_dict(split_pixel_values_by_grid(a)))
    rows = a["prompt_ids"].tolist()
    assert any(rows[i] != rows[i + 1] and rows[i] in rows[i + 2 :] for i in range(len(rows) - 2)), rows
    before = dict(shared.prefix_stats)
    results = []
    for trainer in (stock, shared):
        trainer.model.zero_grad()
        loss = trainer.compute_loss(trainer.model, a)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None}
        results.append((loss.detach(), grads))
    (loss_s, grads_s), (loss_p, grads_p) = results
    assert shared.prefix_stats["calls"] == 2 and shared.prefix_stats["fallbacks"] == 0  # reference + policy
    assert shared.prefix_stats["packed_rows"] - before["packed_rows"] == 2  # still one packed row per group
    # tolerance: float32 with different matmul shapes (packed vs unpacked rows)
    torch.testing.assert_close(loss_p, loss_s, rtol=1e-5, atol=1e-6)
    assert set(grads_p) == set(grads_s) and all("lora_" in n for n in grads_s)
    assert any(g.abs().sum() > 0 for n, g in grads_s.items() if "lora_A" in n)
    for name in grads_s:
        torch.testing.assert_close(grads_p[name], grads_s[name], rtol=1e-4, atol=1e-6)


def test_rows_group_only_with_identical_prompts_and_pixels_adjacent_or_not():
    ids = torch.tensor([[1, 2], [1, 2], [1, 3], [1, 2]])
    mask = torch.ones_like(ids)
    pixels = [torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3), torch.ones(2, 3)]
    assert group_rows(ids, mask, pixels) == [[0, 1], [2], [3]]
    pixels[3] = torch.zeros(2, 3)  # TRL shuffles a generation batch: a group's rows need not be adjacent
    assert group_rows(ids, mask, pixels) == [[0, 1, 3], [2]]
    pixels[1] = torch.ones(2, 3)
    assert group_rows(ids, mask, pixels) == [[0, 3], [1], [2]]


def test_shared_prefix_trainer_trains_end_to_end_with_whole_groups_per_micro_batch(tiny_model, tiny_build, tmp_path):
    """2 completions x accumulation 2 with G=2: TRL's shuffle would mix the 2 prompts over the 2 micro-batches."""
    seen = {}
    settings = {**SMALL, "trainer": "shared_prefix", "gradient_accumulation_steps": 2, "max_steps": 1}
    manifest = run_training(
        str(tiny_build),
        str(tiny_model),
        load_config(None, settings),
        tmp_path / "run",
        extra_reward_funcs=[completion_checksum],
        on_trainer=lambda tr: seen.update(trainer=tr, before=lora_b(tr.model)),
    )
    assert manifest["status"] == "complete" and manifest["config"]["trainer"] == "shared_prefix"
    trainer = seen["trainer"]
    assert trainer.keeps_groups_whole()
    stats = trainer.prefix_stats
    # reference pass (2 chunks of 2 rows) + 2 policy micro-batches of 2 rows: every pass holds one whole group
    assert (stats["calls"], stats["rows"], stats["packed_rows"], stats["fallbacks"]) == (4, 8, 4, 0)
    after = lora_b(trainer.model)
    assert any(not torch.equal(after[n], seen["before"][n]) for n in after)
    trainer.loss_type = "bnpo"  # its token mean is per micro-batch: TRL's shuffle stays
    assert not trainer.keeps_groups_whole()
