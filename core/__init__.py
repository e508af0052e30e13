"""DefectLab core: data, models, scoring, training, metrics. Never imports Qt or `app`."""

__version__ = "0.1.0"
VERSION_TEXT = f"defectlab {__version__}"  # what `defectlab --version` prints
