"""The comic look as a CLASSICAL image operator (NumPy only, no learned model).

Three steps, all on float32 RGB in [0, 1]:

1. Edge-preserving smoothing: two passes of a 7x7 bilateral filter (spatial sigma 2 px, range
   sigma 0.06 + 0.10 * strength), which flattens skin and cloth into even areas and keeps the
   outlines between them.
2. Cel shading: the smoothed image's luminance is quantised to `levels` flat bands
   (levels = round(12 - 7 * strength): 7 at the default 0.7, 5 at 1), each pixel's colour scaled
   to its band, and the saturation raised by 1 + 0.5 * strength.
3. Ink: dark outlines where a difference of Gaussians of the smoothed luminance (sigma 1 and
   1.6 px) falls below a threshold, i.e. on the dark side of every clear edge; their opacity is
   0.5 + 0.5 * strength.

The result is mixed with the input by min(1, strength / 0.25), so strength 0 returns the input
unchanged and everything from 0.25 up is fully comic, its parameters as above.

Locality: every step reads a fixed window around the pixel, with edge padding at the tile's
border: two bilateral passes (radius 3 each) then the wider Gaussian (radius 5): an output pixel
depends only on input pixels within 11 px of it. No statistic of the whole tile, no position.
"""

from __future__ import annotations

import numpy as np
from gaussian_blur import gaussian

RADIUS = 11
BILATERAL_RADIUS = 3
BILATERAL_PASSES = 2
SPATIAL_SIGMA = 2.0
DOG_SIGMAS = (1.0, 1.6)
DOG_RADIUS = 5
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def comic(images: np.ndarray, strength: float) -> np.ndarray:
    """uint8 [N, H, W, 3] -> uint8 [N, H, W, 3]; strength in [0, 1]."""
    if strength <= 0:
        return images.copy()
    x = images.astype(np.float32) / 255
    smooth = x
    range_sigma = 0.06 + 0.10 * strength
    for _ in range(BILATERAL_PASSES):
        smooth = bilateral(smooth, BILATERAL_RADIUS, SPATIAL_SIGMA, range_sigma)

    luma = smooth @ LUMA
    levels = int(round(12 - 7 * strength))
    banded = (np.floor(luma * levels) + 0.5) / levels
    flat = smooth * ((banded + 0.02) / (luma + 0.02))[..., None]
    grey = (flat @ LUMA)[..., None]
    flat = grey + (flat - grey) * (1 + 0.5 * strength)

    fine = gaussian(luma[..., None], DOG_SIGMAS[0], DOG_RADIUS)[..., 0]
    coarse = gaussian(luma[..., None], DOG_SIGMAS[1], DOG_RADIUS)[..., 0]
    ink = np.clip((coarse - fine - 0.008) / 0.02, 0, 1) * (0.5 + 0.5 * strength)
    drawn = np.clip(flat, 0, 1) * (1 - ink)[..., None]

    mix = min(1.0, strength / 0.25)
    out = x + (drawn - x) * mix
    return np.round(np.clip(out, 0, 1) * 255).astype(np.uint8)


def bilateral(x: np.ndarray, radius: int, spatial_sigma: float, range_sigma: float) -> np.ndarray:
    n, h, w, c = x.shape
    padded = np.pad(x, ((0, 0), (radius, radius), (radius, radius), (0, 0)), mode="edge")
    total = np.zeros_like(x)
    weights = np.zeros((n, h, w, 1), np.float32)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            shifted = padded[:, radius + dy : radius + dy + h, radius + dx : radius + dx + w, :]
            distance = np.square(shifted - x).sum(axis=-1, keepdims=True)
            weight = np.exp(-distance / (2 * range_sigma**2) - (dy * dy + dx * dx) / (2 * spatial_sigma**2))
            total += weight * shifted
            weights += weight
    return total / weights
