"""Frozen pretrained feature networks (ImageNet EfficientNet-Lite0, VGG-19 when its weights are local) and the
perceptual feature loss built on them. Below models and scoring: both use them, neither is used here."""
