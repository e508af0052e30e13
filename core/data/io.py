"""Image and mask reading/writing with OpenCV, safe for unicode paths.

Images come back as float32 (C,H,W) in [0,1] with C = 1 (single-channel file) or 3 (RGB order);
masks as float32 (1,H,W) in {0,1}. Files are read as bytes and decoded with `cv2.imdecode`, because
`cv2.imread` cannot open non-ASCII paths on Windows. EXIF orientation is ignored on purpose: masks
are drawn on the stored pixel grid, so rotating the image would misalign them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from core.fileio import plain_permissions

IMAGE_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})


class ImageReadError(ValueError):
    """An image or mask file could not be read; `reason` says why."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"Cannot read image {self.path}: {reason}")


class MaskMismatchError(ValueError):
    """A mask's size differs from its image's size."""

    def __init__(
        self,
        mask_path: str | os.PathLike[str],
        image_path: str | os.PathLike[str],
        mask_hw: tuple[int, int],
        image_hw: tuple[int, int],
    ) -> None:
        self.mask_path = Path(mask_path)
        self.image_path = Path(image_path)
        self.mask_hw = mask_hw
        self.image_hw = image_hw
        super().__init__(
            f"Mask {self.mask_path} is {mask_hw[1]}x{mask_hw[0]} (WxH) but its image "
            f"{self.image_path} is {image_hw[1]}x{image_hw[0]}; "
            "the mask must have exactly the image's size: re-export or resize the mask."
        )


def is_image_path(path: str | os.PathLike[str]) -> bool:
    """True when the file name has one of IMAGE_SUFFIXES (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def _decode(path: Path) -> np.ndarray:
    """Decode a file as stored: (H,W) or (H,W,C) uint8/uint16, channels in BGR(A) order.

    Raises ImageReadError with a specific reason for every failure.
    """
    try:
        if not path.exists():
            raise ImageReadError(path, "file not found")
        if path.is_dir():
            raise ImageReadError(path, "is a folder, not an image file")
        data = np.fromfile(path, dtype=np.uint8)
    except PermissionError:
        raise ImageReadError(path, "permission denied") from None
    except OSError as exc:
        raise ImageReadError(path, f"could not read the file ({exc.strerror or exc})") from None
    if data.size == 0:
        raise ImageReadError(path, "empty file")
    try:
        array = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error:
        # Some decoders raise instead of returning None on malformed input.
        array = None
    if array is None or array.size == 0:
        raise ImageReadError(path, "not a decodable image (corrupt or unsupported format)")
    if array.dtype not in (np.uint8, np.uint16):
        raise ImageReadError(
            path, f"unsupported pixel type {array.dtype}; convert it to an 8- or 16-bit PNG or TIFF"
        )
    if array.ndim == 3 and array.shape[2] not in (1, 3, 4):
        raise ImageReadError(path, f"unsupported number of channels ({array.shape[2]})")
    return array


def check_image(path: str | os.PathLike[str]) -> str | None:
    """Return None when `read_image(path)` would succeed, else the reason it would fail."""
    try:
        _decode(Path(path))
    except ImageReadError as exc:
        return exc.reason
    return None


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as float32 (C,H,W) in [0,1].

    C = 1 for single-channel files, else 3 in RGB order (alpha dropped; palette PNGs are
    expanded to colour by the decoder). 16-bit files are scaled by 65535.
    """
    path = Path(path)
    array = _decode(path)
    scale = 255.0 if array.dtype == np.uint8 else 65535.0
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        chw = array[None, :, :]
    else:
        bgr = array[:, :, :3]  # drop alpha: defects live in colour, not in transparency
        chw = bgr[:, :, ::-1].transpose(2, 0, 1)  # BGR -> RGB, HWC -> CHW
    return np.ascontiguousarray(chw, dtype=np.float32) / np.float32(scale)


def read_mask(
    mask_path: str | os.PathLike[str],
    image_path: str | os.PathLike[str],
    image_hw: tuple[int, int],
) -> np.ndarray:
    """Read a defect mask as float32 (1,H,W) in {0,1}, binarized with `>= 128`.

    `image_hw` is the (H,W) of the image the mask belongs to; any other size raises
    MaskMismatchError naming both files. Colour masks use the brightest colour channel;
    16-bit masks are reduced to 8 bits first.
    """
    mask_path = Path(mask_path)
    array = _decode(mask_path)
    if array.dtype == np.uint16:
        array = (array >> 8).astype(np.uint8)
    if array.ndim == 3:
        array = array[:, :, :3].max(axis=2)
    mask_hw = (int(array.shape[0]), int(array.shape[1]))
    expected = (int(image_hw[0]), int(image_hw[1]))
    if mask_hw != expected:
        raise MaskMismatchError(mask_path, image_path, mask_hw, expected)
    return (array >= 128).astype(np.float32)[None, :, :]


def to_uint8_hwc(image_chw: np.ndarray) -> np.ndarray:
    """Convert float (C,H,W) in [0,1] to uint8 (H,W,C), rounding and clipping; channel order kept."""
    if image_chw.ndim != 3:
        raise ValueError(f"expected an image of shape (C,H,W), got shape {image_chw.shape}")
    scaled = np.clip(np.asarray(image_chw, dtype=np.float32) * 255.0 + 0.5, 0, 255)
    return np.ascontiguousarray(scaled.astype(np.uint8).transpose(1, 2, 0))


def write_png_atomic(path: str | os.PathLike[str], array_uint8: np.ndarray) -> None:
    """Write uint8 (H,W), (H,W,1), (H,W,3) RGB or (H,W,4) RGBA as a PNG, atomically.

    The PNG goes to a temporary file in the same folder and is then moved over `path`, so a crash
    never leaves a half-written file under the final name.
    """
    path = Path(path)
    array = np.asarray(array_uint8)
    if array.dtype != np.uint8:
        raise ValueError(f"write_png_atomic({path}) needs uint8 pixels, got {array.dtype}; use to_uint8_hwc")
    if array.ndim == 3 and array.shape[2] == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    elif array.ndim == 3 and array.shape[2] == 4:
        array = cv2.cvtColor(array, cv2.COLOR_RGBA2BGRA)
    elif not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 1)):
        raise ValueError(f"write_png_atomic({path}): expected (H,W) or (H,W,1|3|4), got shape {array.shape}")
    ok, encoded = cv2.imencode(".png", array)
    if not ok:
        raise ValueError(f"Could not encode {path} as PNG (shape {array.shape})")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"Cannot write {path}: folder {path.parent} does not exist; create it first")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(encoded.tobytes())
        plain_permissions(tmp_name)  # mkstemp makes 0600; reports and overlays are for others to read too
        os.replace(tmp_name, path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.remove(tmp_name)
        raise
