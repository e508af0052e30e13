"""Tests for core.data.io: decoding many formats, clear errors, masks, atomic PNG writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.data.io import (
    IMAGE_SUFFIXES,
    ImageReadError,
    MaskMismatchError,
    check_image,
    read_image,
    read_mask,
    to_uint8_hwc,
    write_png_atomic,
)

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, size=(12, 17, 3), dtype=np.uint8)  # (H,W,3), deliberately non-square
GRAY = RGB[:, :, 0].copy()


def _save(path: Path, array: np.ndarray, **kwargs: object) -> Path:
    Image.fromarray(array).save(path, **kwargs)
    return path


def test_suffixes_are_lowercase_set() -> None:
    assert {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"} == set(IMAGE_SUFFIXES)


def test_gray_8bit_png(tmp_path: Path) -> None:
    image = read_image(_save(tmp_path / "g.png", GRAY))
    assert image.shape == (1, 12, 17) and image.dtype == np.float32
    np.testing.assert_allclose(image[0], GRAY / 255.0, atol=1e-7)


def test_gray_16bit_png_scaled_by_65535(tmp_path: Path) -> None:
    gray16 = (GRAY.astype(np.uint16) * 257).astype(np.uint16)
    gray16[0, 0] = 65535
    image = read_image(_save(tmp_path / "g16.png", gray16))
    assert image.shape == (1, 12, 17)
    np.testing.assert_allclose(image[0], gray16 / 65535.0, atol=1e-7)
    assert image.max() == 1.0


def test_rgb_png_keeps_rgb_order(tmp_path: Path) -> None:
    image = read_image(_save(tmp_path / "c.png", RGB))
    assert image.shape == (3, 12, 17)
    np.testing.assert_allclose(image, RGB.transpose(2, 0, 1) / 255.0, atol=1e-7)


def test_rgb_jpeg_is_close_and_rgb_ordered(tmp_path: Path) -> None:
    # Flat red: JPEG error stays small, and channel order is easy to check.
    red = np.zeros((16, 16, 3), np.uint8)
    red[..., 0] = 220
    image = read_image(_save(tmp_path / "red.JPG", red, quality=95))
    assert image.shape == (3, 16, 16)
    assert image[0].mean() > 0.8 and image[1].mean() < 0.1 and image[2].mean() < 0.1


def test_rgba_png_drops_alpha(tmp_path: Path) -> None:
    rgba = np.dstack([RGB, np.full(GRAY.shape, 7, np.uint8)])
    image = read_image(_save(tmp_path / "a.png", rgba))
    np.testing.assert_allclose(image, RGB.transpose(2, 0, 1) / 255.0, atol=1e-7)


def test_palette_png_is_expanded_to_rgb(tmp_path: Path) -> None:
    palette_image = Image.fromarray(RGB).convert("P")
    palette_image.save(tmp_path / "p.png")
    expected = np.asarray(palette_image.convert("RGB")).transpose(2, 0, 1) / 255.0
    image = read_image(tmp_path / "p.png")
    assert image.shape == (3, 12, 17)
    np.testing.assert_allclose(image, expected, atol=1e-7)


@pytest.mark.parametrize("name", ["c.bmp", "c.tif", "c.tiff"])
def test_bmp_and_tiff(tmp_path: Path, name: str) -> None:
    image = read_image(_save(tmp_path / name, RGB))
    np.testing.assert_allclose(image, RGB.transpose(2, 0, 1) / 255.0, atol=1e-7)


def test_gray_tiff_is_single_channel(tmp_path: Path) -> None:
    assert read_image(_save(tmp_path / "g.tif", GRAY)).shape == (1, 12, 17)


def test_unicode_file_name(tmp_path: Path) -> None:
    folder = tmp_path / "папка"
    folder.mkdir()
    image = read_image(_save(folder / "прокат_ü.png", GRAY))
    assert image.shape == (1, 12, 17)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.png", b"", "empty file"),
        ("junk.png", b"this is not a png at all" * 10, "not a decodable image"),
        ("notes.txt", b"hello", "not a decodable image"),
    ],
)
def test_bad_files_raise_with_reason(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    assert info.value.path == path
    assert reason in info.value.reason
    assert str(info.value).startswith(f"Cannot read image {path}: ")
    assert check_image(path) == info.value.reason


def test_truncated_jpeg_is_rejected(tmp_path: Path) -> None:
    good = _save(tmp_path / "good.jpg", RGB, quality=90)
    data = good.read_bytes()
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="not a decodable image"):
        read_image(broken)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="file not found"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(ImageReadError, match="folder"):
        read_image(tmp_path)
    assert check_image(_save(tmp_path / "ok.png", GRAY)) is None


def test_read_mask_binarizes_at_128(tmp_path: Path) -> None:
    values = np.array([[0, 127, 128, 255]], np.uint8)
    mask = read_mask(_save(tmp_path / "m.png", values), tmp_path / "img.png", (1, 4))
    assert mask.shape == (1, 1, 4) and mask.dtype == np.float32
    np.testing.assert_array_equal(mask[0, 0], [0, 0, 1, 1])


def test_read_mask_16bit_and_rgb(tmp_path: Path) -> None:
    values16 = np.array([[0, 32767, 32768, 65535]], np.uint16)
    mask = read_mask(_save(tmp_path / "m16.png", values16), tmp_path / "img.png", (1, 4))
    np.testing.assert_array_equal(mask[0, 0], [0, 0, 1, 1])
    rgb = np.zeros((1, 4, 3), np.uint8)
    rgb[0, 2:, 1] = 200
    mask = read_mask(_save(tmp_path / "mrgb.png", rgb), tmp_path / "img.png", (1, 4))
    np.testing.assert_array_equal(mask[0, 0], [0, 0, 1, 1])


def test_read_mask_wrong_size_names_both_files(tmp_path: Path) -> None:
    mask_path = _save(tmp_path / "x_mask.png", np.zeros((10, 20), np.uint8))
    image_path = tmp_path / "x.png"
    with pytest.raises(MaskMismatchError) as info:
        read_mask(mask_path, image_path, (12, 17))
    text = str(info.value)
    assert str(mask_path) in text and str(image_path) in text
    assert "20x10" in text and "17x12" in text


def test_read_mask_unreadable(tmp_path: Path) -> None:
    (tmp_path / "m.png").write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty file"):
        read_mask(tmp_path / "m.png", tmp_path / "img.png", (2, 2))


def test_to_uint8_hwc_rounds_and_clips() -> None:
    chw = np.array([[[-0.5, 0.0, 0.5, 1.0, 2.0]]], np.float32)
    out = to_uint8_hwc(chw)
    assert out.shape == (1, 5, 1) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, :, 0], [0, 0, 128, 255, 255])


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_write_png_atomic_round_trip(tmp_path: Path, channels: int) -> None:
    array = RNG.integers(0, 256, size=(9, 11, channels), dtype=np.uint8)
    path = tmp_path / "выход_ü.png"
    path.write_bytes(b"old content")  # replaced, not appended to
    write_png_atomic(path, array)
    back = np.asarray(Image.open(path))
    np.testing.assert_array_equal(back.reshape(array.shape), array)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left behind


def test_write_png_atomic_then_read_image_round_trip(tmp_path: Path) -> None:
    image = read_image(_save(tmp_path / "c.png", RGB))
    write_png_atomic(tmp_path / "copy.png", to_uint8_hwc(image))
    np.testing.assert_array_equal(read_image(tmp_path / "copy.png"), image)


def test_write_png_atomic_rejects_float(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="uint8"):
        write_png_atomic(tmp_path / "f.png", np.zeros((2, 2), np.float32))


def test_mask_checks_name_the_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.data.io import image_hw, mask_size_problem, read_mask_noted  # noqa: PLC0415

    write_png_atomic(tmp_path / "img.png", np.zeros((8, 10), np.uint8))
    one = np.zeros((8, 10), np.uint8)
    one[2:4, 2:4] = 1
    write_png_atomic(tmp_path / "one.png", one)
    write_png_atomic(tmp_path / "small.png", np.zeros((4, 10), np.uint8))
    assert image_hw(tmp_path / "img.png") == (8, 10)
    mask, note = read_mask_noted(tmp_path / "one.png", tmp_path / "img.png", (8, 10))
    assert mask.sum() == 4 and note == "values 0/1, read as 1 = defect"
    assert "empty" in read_mask_noted(tmp_path / "small.png", tmp_path / "img.png", (4, 10))[1]
    assert "small.png is 10x4, the image 10x8" in mask_size_problem(tmp_path / "small.png", tmp_path / "img.png")
    assert mask_size_problem(tmp_path / "one.png", tmp_path / "img.png") is None
    monkeypatch.setenv("DEFECTLAB_MAX_PIXELS", "50")
    with pytest.raises(ImageReadError, match="too large to decode safely: 10x8"):
        read_image(tmp_path / "img.png")
    monkeypatch.setenv("DEFECTLAB_MAX_PIXELS", "lots")
    with pytest.raises(ValueError, match="DEFECTLAB_MAX_PIXELS"):
        read_image(tmp_path / "img.png")
