"""The overlay image every report and map folder shows: the anomaly map in colour over the input, with the
pixel-threshold contour."""

from __future__ import annotations

import cv2
import numpy as np

from core.data.io import to_uint8_hwc


def heatmap_overlay(image: np.ndarray, anomaly_map: np.ndarray, pixel_threshold: float) -> np.ndarray:
    """(C,H,W) image in [0,1] + (H,W) map -> (H,W,3) uint8 RGB: jet colours where the map is at least half
    the pixel threshold, with a white contour at the threshold."""
    gray = to_uint8_hwc(image)
    base = cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB) if gray.shape[2] == 1 else gray
    scale = 255.0 / (2 * pixel_threshold) if pixel_threshold > 0 else 255.0 / max(float(anomaly_map.max()), 1e-12)
    level = np.clip(anomaly_map * scale, 0, 255).astype(np.uint8)
    colour = cv2.cvtColor(cv2.applyColorMap(level, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    alpha = (np.clip(level.astype(np.float32) / 128.0 - 0.5, 0, 1) * 0.6)[..., None]
    out = (base * (1 - alpha) + colour * alpha).astype(np.uint8)
    contours, _ = cv2.findContours((anomaly_map >= pixel_threshold).astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, (255, 255, 255), 1)
    return out
