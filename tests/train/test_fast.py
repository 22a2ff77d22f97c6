"""FastGRPOTrainer computes what the stock GRPOTrainer computes, with less work on the frozen ViT."""

import pytest
import torch

from tests.support.trainbuilds import SMALL, completion_checksum, lora_b, paired_trainers
from train.config import load_config
from train.fast import FastGRPOTrainer
from train.trainer import run_training


@pytest.fixture(params=[1, 2], ids=["ckpt-all", "ckpt-every-2"])
def pair(request, tiny_model, tiny_build, tmp_path):
    """A stock and a fast trainer with identical (non-zero) LoRA weights, in training mode."""
    overrides = {**SMALL, "per_device_train_batch_size": 4, "max_steps": 1}
    return paired_trainers("fast", overrides, request.param, tiny_model, tiny_build, tmp_path)


def _vision_block_calls(trainer):
    visual = next(m for m in trainer.model.modules() if hasattr(m, "patch_embed") and hasattr(m, "blocks"))
    block, calls = visual.blocks[0], []
    forward = block.forward

    def counting(*args, **kwargs):  # forward hooks do not fire on checkpoint recomputation; forward does
        calls.append(1)
        return forward(*args, **kwargs)

    block.forward = counting
    return calls


def test_same_rollouts_loss_and_lora_gradients_as_stock(pair):
    stock, fast, batch = pair
    assert type(fast) is FastGRPOTrainer and fast.vision_cache is not None
    lm_layers = [m for n, m in fast.model.named_modules() if n.endswith("language_model.layers")][0]
    expected = [True, True] if fast.lm_checkpoint_every == 1 else [True, False]
    assert [layer.gradient_checkpointing for layer in lm_layers] == expected
    generated = []
    for trainer in (stock, fast):
        torch.manual_seed(123)
        generated.append(trainer._generate_and_score_completions(batch))
    a, b = generated
    assert torch.equal(a["completion_ids"], b["completion_ids"])
    torch.testing.assert_close(a["ref_per_token_logps"], b["ref_per_token_logps"], rtol=1e-5, atol=1e-6)
    assert a["advantages"].abs().sum() > 0  # the test reward varies within groups
    results = []
    for trainer in (stock, fast):
        trainer.model.zero_grad()
        calls = _vision_block_calls(trainer)
        torch.manual_seed(7)  # LoRA dropout
        loss = trainer.compute_loss(trainer.model, a)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None}
        results.append((loss.detach(), grads, len(calls)))
    (loss_s, grads_s, calls_s), (loss_f, grads_f, calls_f) = results
    torch.testing.assert_close(loss_f, loss_s, rtol=1e-5, atol=1e-7)
    assert set(grads_f) == set(grads_s) and all("lora_" in n for n in grads_s)
    assert any(g.abs().sum() > 0 for n, g in grads_s.items() if "lora_A" in n)
    for name in grads_s:
        torch.testing.assert_close(grads_f[name], grads_s[name], rtol=1e-4, atol=1e-6)
    # stock runs the ViT in the policy forward and again when checkpointing recomputes it in backward;
    # the fast trainer reuses the features encoded during the rollout
    assert calls_s == 2 and calls_f == 0


@pytest.mark.parametrize("pair", [1], indirect=True)
def test_each_distinct_image_is_encoded_once_per_generation_batch(pair):
    _, fast, batch = pair
    distinct = {(im.size, im.tobytes()) for row in batch for im in row["images"]}
    torch.manual_seed(0)
    out = fast._generate_and_score_completions(batch)
    fast.compute_loss(fast.model, out).backward()
    cache = fast.vision_cache
    assert cache.encoded == len(distinct) < cache.requested
    visual = cache.visual
    assert not any(
        getattr(fn, "__name__", "") == "make_inputs_require_grads" for fn in visual.patch_embed._forward_hooks.values()
    )
    assert not any(getattr(m, "gradient_checkpointing", False) for m in visual.modules())
    fast._generate_and_score_completions(batch)  # a new generation batch starts from an empty cache
    assert cache.encoded == 2 * len(distinct)


def test_fast_trainer_trains_end_to_end(tiny_model, tiny_build, tmp_path):
    seen = {}
    manifest = run_training(
        str(tiny_build),
        str(tiny_model),
        load_config(None, {**SMALL, "trainer": "fast"}),
        tmp_path / "run",
        extra_reward_funcs=[completion_checksum],
        on_trainer=lambda tr: seen.update(trainer=tr, before=lora_b(tr.model)),
    )
    assert manifest["status"] == "complete" and manifest["config"]["trainer"] == "fast"
    after = lora_b(seen["trainer"].model)
    assert any(not torch.equal(after[n], seen["before"][n]) for n in after)
