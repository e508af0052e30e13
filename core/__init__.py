"""DefectLab core: data, models, scoring, training, metrics. Never imports Qt or `app`."""

__version__ = "0.1.0"
