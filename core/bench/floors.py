"""Floors every method must beat: scores that know nothing about defects.

- The blur floor: the image "reconstructed" by a Gaussian blur of itself, with no learning at all. It is a
  bench-only `AnomalyModel` (not in the method registry), so it is calibrated, scored and timed through
  exactly the same code as the trained methods, with the same maps (l2, ssim, l1 and the post-hoc
  perceptual scorers) and the same pooling.
- Trivial image scores: compressed file bytes per pixel and mean intensity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from core.data.index import ImageRecord
from core.metrics.curves import auroc
from core.metrics.summary import image_metrics
from core.models.base import AnomalyModel, MethodConfig
from core.models.registry import MethodSpec, get_method
from core.models.phases import Phase

BLUR = "blur-floor"


@dataclass(frozen=True)
class BlurConfig(MethodConfig):
    sigma: float = 4.0  # Gaussian standard deviation in pixels at `input_size`

    @classmethod
    def fast(cls) -> BlurConfig:
        # The input size and pooling of the AE / MemAE / TrustMAE fast presets.
        return cls(input_size=128, resize_mode="resize", epochs=0, augment=False, pooling="max_smoothed")

    @classmethod
    def paper(cls) -> BlurConfig:
        return cls.fast()


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N,C,H,W) with reflect padding (radius 3 sigma) -> (N,C,H,W)."""
    radius = max(1, int(round(3 * sigma)))
    radius = min(radius, x.shape[-1] - 1, x.shape[-2] - 1)
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()
    c = x.shape[1]
    out = F.pad(x, (radius, radius, 0, 0), mode="reflect")
    out = F.conv2d(out, kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    out = F.pad(out, (0, 0, radius, radius), mode="reflect")
    return F.conv2d(out, kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


class BlurReconstruction(AnomalyModel):
    """No-learning reconstruction: recon = blur(x); maps are the reconstruction residuals."""

    method = BLUR
    map_names = ("l2", "ssim", "l1")
    default_map = "l2"

    def phases(self) -> tuple[Phase, ...]:
        return ()  # nothing to train

    @torch.no_grad()
    def predict(self, batch: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        """(N,C,S,S) -> maps {name: (N,1,S,S)}, recon (N,C,S,S)."""
        recon = gaussian_blur(batch, self.config.sigma).clamp(0, 1)  # type: ignore[attr-defined]
        return {name: self.residual_map(name, batch, recon) for name in self.map_names}, recon


BLUR_SPEC = MethodSpec(BLUR, "no-learning floor: the image reconstructed by a Gaussian blur of itself",
                       BlurConfig, BlurReconstruction)


def method_spec(name: str) -> MethodSpec:
    """A registered method, or one of the bench's floors."""
    return BLUR_SPEC if name == BLUR else get_method(name)


def trivial_scores(records: list[ImageRecord]) -> dict[str, dict[str, Any]]:
    """Scores that know nothing about defects: file bytes per pixel and mean intensity. If they separate
    good from defective images, image-level metrics on that dataset are confounded."""
    import cv2  # noqa: PLC0415

    labels, size_score, mean_score = [], [], []
    for record in records:
        image = cv2.imread(str(record.path), cv2.IMREAD_UNCHANGED)
        if image is None:
            continue
        labels.append(record.label)
        size_score.append(record.path.stat().st_size / (image.shape[0] * image.shape[1]))
        mean_score.append(float(image.mean()) / (65535.0 if image.dtype == np.uint16 else 255.0))
    out = {}
    for name, values in (("bytes_per_pixel", size_score), ("mean_intensity", mean_score)):
        metrics = image_metrics(labels, np.asarray(values))
        flags = np.asarray([label != "good" for label in labels])
        value = auroc(flags, np.asarray(values))
        # Either direction reveals a confound: report the better one and say which it was.
        metrics["image_auroc_best_sign"] = max(value, 1 - value)
        metrics["sign"] = "+" if value >= 0.5 else "-"
        out[name] = metrics
    return out
