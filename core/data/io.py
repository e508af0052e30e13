"""Image and mask reading/writing with OpenCV, safe for unicode paths.

Images come back as float32 (C,H,W) in [0,1] with C = 1 (single-channel file) or 3 (RGB order);
masks as float32 (1,H,W) in {0,1}. Files are read as bytes and decoded with `cv2.imdecode`, because
`cv2.imread` cannot open non-ASCII paths on Windows. EXIF orientation is ignored on purpose: masks
are drawn on the stored pixel grid, so rotating the image would misalign them.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from core.errors import FileError
from core.fileio import write_bytes_atomic


IMAGE_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
# Decoding one image takes about 40 bytes per pixel through predict (pixels, float copy, maps, overlay);
# 150 megapixels is then about 6 GiB, a quarter of a 24 GiB machine. DEFECTLAB_MAX_PIXELS changes it.
DEFAULT_MAX_PIXELS = 150_000_000
MIN_USEFUL_SIDE = 16  # images with a shorter side get a warning: too small to show a defect
# DefectLab checks every image's size from its header against max_pixels() before decoding it, so
# Pillow's own decompression-bomb guard (which would also refuse header reads) is replaced by that check.
Image.MAX_IMAGE_PIXELS = None


class ImageReadError(FileError):
    """An image or mask file could not be read; `reason` says why. `path` is a Path."""

    action = "read image"

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(Path(path), reason)


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


def max_pixels() -> int:
    """The largest image (width x height) DefectLab decodes: $DEFECTLAB_MAX_PIXELS or DEFAULT_MAX_PIXELS."""
    text = os.environ.get("DEFECTLAB_MAX_PIXELS", "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(float(text))
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"DEFECTLAB_MAX_PIXELS={text!r} is not a positive number of pixels; "
                         f"unset it or give e.g. {DEFAULT_MAX_PIXELS}")
    return value


def _header_hw(data: np.ndarray | bytes) -> tuple[int, int] | None:
    """(H,W) from the file header without decoding the pixels; None when Pillow cannot tell."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
    except Exception:  # noqa: BLE001 - any header Pillow cannot parse: the decoder decides
        return None
    return int(height), int(width)


def image_hw(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """(H,W) of an image file read from its header only; None when the file or its header is unreadable."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(1 << 20)  # headers sit at the start; TIFF offsets beyond this are rare
    except OSError:
        return None
    return _header_hw(head)


def mask_size_problem(mask_path: str | os.PathLike[str], image_path: str | os.PathLike[str]) -> str | None:
    """A short note when a mask's size (from the headers, nothing decoded) differs from its image's, else None."""
    mask_hw, hw = image_hw(mask_path), image_hw(image_path)
    if mask_hw is None or hw is None or mask_hw == hw:
        return None
    return (f"mask size differs: {Path(mask_path).name} is {mask_hw[1]}x{mask_hw[0]}, the image {hw[1]}x{hw[0]}; "
            "re-export or resize the mask")


def _check_size(path: Path, data: np.ndarray) -> None:
    hw = _header_hw(data)
    limit = max_pixels()
    if hw is not None and hw[0] * hw[1] > limit:
        raise ImageReadError(path, f"too large to decode safely: {hw[1]}x{hw[0]} = {hw[0] * hw[1] / 1e6:.0f} "
                                   f"megapixels, above the limit of {limit / 1e6:.0f} megapixels; shrink the "
                                   "image, or raise DEFECTLAB_MAX_PIXELS on a machine with more memory")


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
    _check_size(path, data)
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
    """Read a defect mask as float32 (1,H,W) in {0,1} (see read_mask_noted; the note is dropped)."""
    return read_mask_noted(mask_path, image_path, image_hw)[0]


def read_mask_noted(
    mask_path: str | os.PathLike[str],
    image_path: str | os.PathLike[str],
    image_hw: tuple[int, int],
) -> tuple[np.ndarray, str | None]:
    """Read a defect mask as float32 (1,H,W) in {0,1}, plus a note for a mask worth a word (else None).

    Masks are binarized with `>= 128`, except masks whose only values are 0 and 1 (a common export
    format): there 1 is the defect (note "values 0/1"). A mask with no defect pixel after binarizing gets
    the note "empty". `image_hw` is the (H,W) of the image the mask belongs to; any other size raises
    MaskMismatchError naming both files. Colour masks use the brightest colour channel; 16-bit masks
    are reduced to 8 bits first.
    """
    mask_path = Path(mask_path)
    array = _decode(mask_path)
    if array.ndim == 3:
        array = array[:, :, :3].max(axis=2)
    mask_hw = (int(array.shape[0]), int(array.shape[1]))
    expected = (int(image_hw[0]), int(image_hw[1]))
    if mask_hw != expected:
        raise MaskMismatchError(mask_path, image_path, mask_hw, expected)
    peak = int(array.max())
    if peak == 1:
        return (array >= 1).astype(np.float32)[None, :, :], "values 0/1, read as 1 = defect"
    if array.dtype == np.uint16:
        array = (array >> 8).astype(np.uint8)
    binary = (array >= 128).astype(np.float32)[None, :, :]
    if not binary.any():
        return binary, "empty after binarizing (no pixel >= 128)"
    return binary, None


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
    write_bytes_atomic(path, encoded.tobytes())
