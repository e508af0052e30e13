"""DefectLab's Qt workbench. Holds Qt code only; every computation is in `core`."""
