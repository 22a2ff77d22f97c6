"""The global batch of a GRPO run, as TRL 1.16 forms it, against the paper's.

In TRL (as in the authors' trainer) ``per_device_train_batch_size`` counts *completions*. One
optimizer step sees ``processes x per_device x gradient_accumulation_steps`` completions, that is
that number divided by ``num_generations`` prompts. The official script runs 8 GPUs x 1 completion
x accumulation 2 with G = 8: 16 completions = 2 prompts per step, so 2 epochs of the 2K mixture
are 2,000 optimizer steps.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from curate.errors import UserError

PAPER_PROMPTS_PER_STEP = 2
PAPER_COMPLETIONS_PER_STEP = 16


@dataclass(frozen=True)
class BatchPlan:
    processes: int
    per_device_completions: int
    gradient_accumulation_steps: int
    num_generations: int
    steps_per_generation: int
    num_iterations: int
    rows: int
    num_train_epochs: float
    max_steps: int

    @property
    def completions_per_step(self) -> int:
        return self.processes * self.per_device_completions * self.gradient_accumulation_steps

    @property
    def prompts_per_step(self) -> float:
        return self.completions_per_step / self.num_generations

    @property
    def optimizer_steps(self) -> int:
        """What transformers' Trainer will run: ``max_steps`` if set, else epochs over TRL's repeat sampler."""
        if self.max_steps > 0:
            return self.max_steps
        generation_prompts = self.processes * self.per_device_completions * self.steps_per_generation
        generation_prompts //= self.num_generations
        batches = (self.rows // generation_prompts) * self.num_iterations * self.steps_per_generation
        per_epoch = max(math.ceil(batches / self.gradient_accumulation_steps), 1)
        return math.ceil(self.num_train_epochs * per_epoch)

    def record(self) -> dict:
        return {
            **asdict(self),
            "completions_per_step": self.completions_per_step,
            "prompts_per_step": self.prompts_per_step,
            "optimizer_steps": self.optimizer_steps,
            "paper_prompts_per_step": PAPER_PROMPTS_PER_STEP,
            "paper_completions_per_step": PAPER_COMPLETIONS_PER_STEP,
        }

    def describe(self) -> str:
        return (
            f"global batch: {self.processes} process(es) x {self.per_device_completions} completion(s) per device "
            f"x accumulation {self.gradient_accumulation_steps} = {self.completions_per_step} completions "
            f"= {self.prompts_per_step:g} prompts x {self.num_generations} generations per optimizer step; "
            f"{self.optimizer_steps} optimizer steps"
        )

    def warning(self, intended: bool) -> str | None:
        """One line when the prompts per step differ from the paper's, unless the config says it is intended."""
        if intended or self.prompts_per_step == PAPER_PROMPTS_PER_STEP:
            return None
        return (
            f"{self.prompts_per_step:g} prompts per optimizer step, the paper used {PAPER_PROMPTS_PER_STEP} "
            f"({PAPER_COMPLETIONS_PER_STEP} completions); set global_batch_intended: true if this is on purpose"
        )


def batch_plan(args, rows: int) -> BatchPlan:
    """The plan of a built GRPOConfig (``args.world_size`` is the launcher's process count)."""
    return BatchPlan(
        processes=int(args.world_size),
        per_device_completions=int(args.per_device_train_batch_size),
        gradient_accumulation_steps=int(args.gradient_accumulation_steps),
        num_generations=int(args.num_generations),
        steps_per_generation=int(args.steps_per_generation),
        num_iterations=int(args.num_iterations),
        rows=int(rows),
        num_train_epochs=float(args.num_train_epochs),
        max_steps=int(args.max_steps),
    )


def check_divisible(processes: int, per_device: int, accumulation: int, generations: int) -> None:
    """TRL needs whole groups in a generation batch; say so in repic's terms before any model loads."""
    completions = processes * per_device * accumulation
    if completions % generations:
        raise UserError(
            f"{processes} process(es) x per_device_train_batch_size {per_device} x gradient_accumulation_steps "
            f"{accumulation} = {completions} completions per step, not a multiple of num_generations ({generations})"
        )
