"""The training engine: determinism, resume from checkpoint, cancel, NaN detection, phases as data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from core.data.preprocess import ResizePolicy
from core.models import build_model
from core.progress import CancelToken
from core.training import Phase, TrainingDiverged, TrainingImages, TrainOptions, fit, load_checkpoint
from core.models.phases import OptimizerSpec


def _images(n: int = 8, size: int = 128, channels: int = 1) -> TrainingImages:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (channels, size, size), dtype=np.uint8) for _ in range(n)]
    return TrainingImages(images, ResizePolicy("resize", size), augment=True)


def _model(**overrides):
    settings = dict(epochs=2, batch_size=4, in_channels=1)
    settings.update(overrides)
    torch.manual_seed(0)  # weight initialisation, as the train workflow does with its seed
    return build_model("ae-l2", "fast", **settings)


def _run(model, images, options, cancel=None, stop_after: int | None = None):
    values = []
    for p in fit(model, images, options, cancel):
        values.append(p)
        if stop_after is not None and p.step == stop_after and p.phase == "train":
            cancel.cancel()
    return values


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_fit_reports_every_step_and_is_deterministic():
    images = _images()
    a, b = _model(), _model()
    torch.manual_seed(1)  # the global RNG state at the start must not matter: fit seeds itself
    values = _run(a, images, TrainOptions(seed=5, device="cpu"))
    torch.manual_seed(2)
    _run(b, images, TrainOptions(seed=5, device="cpu"))
    steps = [p for p in values if p.phase == "train"]
    assert [p.step for p in steps] == [1, 2, 3, 4]  # 8 images / batch 4 = 2 steps x 2 epochs
    assert all(p.total == 4 and "l2" in p.losses for p in steps)
    assert values[-1].phase == "done"
    for key, value in _weights(a).items():
        assert torch.equal(value, _weights(b)[key]), key


def test_cancel_keeps_checkpoint_and_resume_matches_uninterrupted(tmp_path: Path):
    images = _images()
    reference = _model(epochs=3)
    _run(reference, images, TrainOptions(seed=0, device="cpu"))

    ckpt = tmp_path / "run.ckpt.safetensors"
    options = TrainOptions(seed=0, device="cpu", checkpoint_path=ckpt, checkpoint_every=100)
    cancel = CancelToken()
    interrupted = _model(epochs=3)
    values = _run(interrupted, images, options, cancel, stop_after=3)
    assert values[-1].phase == "cancelled" and "checkpoint kept" in values[-1].message
    assert load_checkpoint(ckpt).step == 3

    resumed = _model(epochs=3)
    values = _run(resumed, images, options)
    assert values[0].phase == "resumed" and values[0].step == 3
    assert [p.step for p in values if p.phase == "train"] == [4, 5, 6]
    for key, value in _weights(reference).items():
        assert torch.allclose(value, _weights(resumed)[key], atol=1e-6), key


def test_resume_rejects_checkpoint_of_other_settings(tmp_path: Path):
    ckpt = tmp_path / "run.ckpt.safetensors"
    _run(_model(), _images(), TrainOptions(device="cpu", checkpoint_path=ckpt))
    with pytest.raises(ValueError, match="different training"):
        _run(_model(lr=1e-3), _images(), TrainOptions(device="cpu", checkpoint_path=ckpt))


def test_nan_loss_stops_with_clear_error():
    model = _model()
    original = model.training_losses
    model.training_losses = lambda batch, phase: {k: v * float("nan") for k, v in original(batch, phase).items()}
    with pytest.raises(TrainingDiverged, match=r"loss total, l2 became nan at step 1 \(phase 'train'\)"):
        _run(model, _images(), TrainOptions(device="cpu"))


def test_two_phases_with_frozen_module_run_in_order():
    """Phases are data: a second phase that freezes the encoder leaves it untouched."""
    model = _model(epochs=1)
    phases = (Phase("stage1", 1, (OptimizerSpec("total", (), 1e-3),)),
              Phase("stage2", 1, (OptimizerSpec("total", ("decoder",), 1e-3),), frozen=("encoder",)))
    model.phases = lambda: phases
    seen: list[str] = []
    encoder_after_stage1 = None
    for p in fit(model, _images(), TrainOptions(device="cpu")):
        if p.phase == "stage2" and encoder_after_stage1 is None:
            encoder_after_stage1 = {k: v.clone() for k, v in model.encoder.state_dict().items()}
        seen.append(p.phase)
    assert seen == ["stage1", "stage1", "stage2", "stage2", "done"]
    for key, value in model.encoder.state_dict().items():
        assert torch.equal(value, encoder_after_stage1[key]), key


def test_seconds_per_step_times_a_copy_and_leaves_the_model_untouched():
    from core.training.engine import seconds_per_step

    model = _model()
    before = _weights(model)
    phase = next(p for p in model.phases() if p.is_gradient_phase)
    seconds = seconds_per_step(model, _images(), phase, steps=2, device="cpu")
    assert 0 < seconds < 60
    assert all(torch.equal(before[k], v) for k, v in _weights(model).items())


def test_a_phase_with_fixed_steps_runs_that_many_batches_whatever_the_data():
    model = _model()
    model.phases = lambda: (Phase("iterations", 99, (OptimizerSpec("total", (), 1e-3),), steps=5),)
    values = [p for p in fit(model, _images(), TrainOptions(device="cpu")) if p.phase == "iterations"]
    assert [p.step for p in values] == [1, 2, 3, 4, 5] and values[-1].total == 5  # 2 batches per epoch


def test_a_callable_loss_is_computed_after_the_earlier_optimizer_stepped():
    """A discriminator-then-generator order: the generator's loss must read the updated decoder weights,
    and its logged values join the step's losses."""
    model = _model(epochs=1)
    seen: dict[str, torch.Tensor] = {}
    original = model.training_losses

    def losses(batch, phase):
        first = original(batch, phase)

        def late():
            seen["decoder"] = next(model.decoder.parameters()).detach().clone()
            out = original(batch, phase)
            return {"second": out["total"], "second_l2": out["l2"]}
        return {**first, "second": late}
    model.training_losses = losses
    model.phases = lambda: (Phase("train", 1, (OptimizerSpec("total", ("decoder",), 1e-2),
                                              OptimizerSpec("second", ("encoder",), 1e-2))),)
    before = next(model.decoder.parameters()).detach().clone()
    values = [p for p in fit(model, _images(), TrainOptions(device="cpu")) if p.phase == "train"]
    assert not torch.equal(seen["decoder"], before)  # the decoder had already stepped when `late` ran
    assert "second_l2" in values[0].losses and "second" in values[0].losses


def test_a_callable_loss_that_diverges_stops_with_the_same_message():
    model = _model(epochs=1)
    original = model.training_losses
    model.training_losses = lambda batch, phase: {
        **original(batch, phase), "late": lambda: {"late": original(batch, phase)["total"] * float("inf")}}
    model.phases = lambda: (Phase("train", 1, (OptimizerSpec("total", (), 1e-3), OptimizerSpec("late", (), 1e-3))),)
    with pytest.raises(TrainingDiverged, match=r"loss late became inf at step 1"):
        _run(model, _images(), TrainOptions(device="cpu"))


def test_training_ends_with_the_perceptual_calibration_when_a_perceptual_map_is_scored():
    model = _model(epochs=1, scorers=("perceptual",))
    phases = [p.phase for p in fit(model, _images(), TrainOptions(device="cpu"))]
    assert phases == ["train", "train", "perceptual_stats", "perceptual_stats", "done"]
    assert model.perceptual_stats.shape == (4, 2, 128, 128) and not model.training
    uncalibrated = _model(epochs=1, scorers=("perceptual",), perceptual_calibration="none")
    assert [p.phase for p in fit(uncalibrated, _images(), TrainOptions(device="cpu"))][-2:] == ["train", "done"]
