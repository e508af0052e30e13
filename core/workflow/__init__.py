"""End-to-end jobs shared by the CLI and the GUI, each a generator of Progress."""

from core.workflow.evaluate import EvaluateRequest, evaluate_model
from core.workflow.predict import PredictRequest, predict_folder
from core.workflow.train import TrainRequest, default_model_path, train_model

__all__ = ["EvaluateRequest", "PredictRequest", "TrainRequest", "default_model_path", "evaluate_model",
           "predict_folder", "train_model"]
