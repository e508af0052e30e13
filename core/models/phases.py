"""Training phases as data: two-stage and two-phase methods describe their schedule, one engine runs it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OptimizerSpec:
    """An Adam optimizer minimizing the loss named `loss` over the parameters of `modules`.

    `modules` are attribute names of the model; an empty tuple means every trainable parameter.
    """

    loss: str = "total"
    modules: tuple[str, ...] = ()
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0


@dataclass(frozen=True)
class Phase:
    """One stage of training.

    With optimizers: each step computes `model.training_losses(batch, phase.name)` and steps every
    optimizer on its loss, in order (so a generator step can come before its discriminator step). A loss
    that must see the weights an earlier optimizer of the same step has just updated (a generator step
    after its discriminator step) is given as a callable instead of a tensor: the engine calls it at its
    optimizer's turn (see `AnomalyModel.training_losses`).
    Without optimizers: a non-gradient phase (e.g. filling a memory bank) that calls
    `model.collect(batch, phase.name)` per step and `model.finalize(phase.name)` at its end.
    `frozen` modules are put in eval mode and get no gradients during the phase.
    `steps` > 0 fixes the phase's length in batches whatever the size of the training set (a paper that
    counts iterations, not epochs); 0 means `epochs` passes over the training images.
    """

    name: str
    epochs: int
    optimizers: tuple[OptimizerSpec, ...] = ()
    frozen: tuple[str, ...] = ()
    steps: int = 0

    def length(self, steps_per_epoch: int) -> int:
        """Batches this phase runs for a training set of `steps_per_epoch` batches per epoch."""
        return self.steps if self.steps > 0 else self.epochs * steps_per_epoch

    @property
    def is_gradient_phase(self) -> bool:
        return bool(self.optimizers)
