"""Procedural data synthesis: Perlin noise and masks, inpainting hole masks, textures, and synthetic defects.

Used for the built-in demo dataset and for DRAEM-style synthetic anomalies during training.
"""

from core.synth.defects import DEFECTS, MIN_DELTA, crack, scratch, spot, stain
from core.synth.masks import box_mask, brush_stroke_mask, checkerboard_masks
from core.synth.noise import fractal_noise, perlin_mask, perlin_noise
from core.synth.textures import TEXTURES, brushed_metal, ceramic_tiles, random_texture, woven_fabric

__all__ = [
    "perlin_noise",
    "fractal_noise",
    "perlin_mask",
    "brush_stroke_mask",
    "box_mask",
    "checkerboard_masks",
    "woven_fabric",
    "brushed_metal",
    "ceramic_tiles",
    "random_texture",
    "TEXTURES",
    "scratch",
    "spot",
    "crack",
    "stain",
    "DEFECTS",
    "MIN_DELTA",
]
