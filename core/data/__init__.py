"""Dataset reading, indexing and the resize/tiling policy. Plain NumPy/OpenCV, no Qt."""

from core.data.index import (
    DatasetIndex,
    ImageRecord,
    Skipped,
    default_data_dir,
    index_dataset,
    iter_index_dataset,
    resolve_data_root,
    split_normals,
)
from core.data.io import (
    IMAGE_SUFFIXES,
    ImageReadError,
    MaskMismatchError,
    check_image,
    is_image_path,
    read_image,
    read_mask,
    to_uint8_hwc,
    write_png_atomic,
)
from core.data.preprocess import (
    ResizePolicy,
    extract_tiles,
    scaled_hw,
    stitch,
    tile_grid,
    to_full_resolution,
    working_image,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "DatasetIndex",
    "ImageReadError",
    "ImageRecord",
    "MaskMismatchError",
    "ResizePolicy",
    "Skipped",
    "check_image",
    "default_data_dir",
    "extract_tiles",
    "index_dataset",
    "is_image_path",
    "iter_index_dataset",
    "read_image",
    "read_mask",
    "resolve_data_root",
    "scaled_hw",
    "split_normals",
    "stitch",
    "tile_grid",
    "to_full_resolution",
    "to_uint8_hwc",
    "working_image",
]
