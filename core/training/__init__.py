"""The training engine, its phases, batches and checkpoints."""

from core.training.batches import TrainingImages
from core.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from core.training.engine import TrainingDiverged, TrainOptions, fit
from core.models.phases import OptimizerSpec, Phase

__all__ = ["Checkpoint", "OptimizerSpec", "Phase", "TrainOptions", "TrainingDiverged", "TrainingImages", "fit",
           "load_checkpoint", "save_checkpoint"]
