"""Exported models: ONNX graphs with the model's metadata inside, and a runtime that scores with them."""
