"""The aged look as a CLASSICAL image operator (NumPy only). No face-aging model exists in this
project: this is a photographic filter that makes a portrait read as older, not a prediction of
how the person will age. It moves no features and adds no wrinkles that are not in the photo.

On float32 RGB in [0, 1], with s = strength:

1. Skin texture and lines: the luminance's fine detail (luma minus a Gaussian blur, sigma 1.5
   px) is amplified by 1 + 2.5 s, and its mid-scale detail (sigma 4 px, creases and folds)
   by 1 + 1.2 s; only the darkening half of the mid-scale detail is kept, so creases deepen
   without bright halos. Added equally to R, G and B, so no colour noise.
2. Colour: saturation times 1 - 0.55 s; a warm, yellowed cast (R x 1 + 0.06 s, G x 1 + 0.02 s,
   B x 1 - 0.14 s).
3. Tone: highlights above luma 0.6 are pulled towards a dull ivory grey (up to 0.4 s of the way),
   and the contrast is softened around mid-grey by 0.15 s with the blacks lifted by 0.03 s.

Strength 0 returns the input unchanged; each step's amount grows linearly with strength.

Locality: the widest window is the sigma-4 Gaussian, truncated at radius 12 and edge padded at
the tile's border; everything else is per pixel. An output pixel depends only on input pixels
within 12 px of it. No statistic of the whole tile, no position, no randomness.
"""

from __future__ import annotations

import numpy as np
from gaussian_blur import gaussian

RADIUS = 12
FINE_SIGMA, FINE_RADIUS = 1.5, 5
MID_SIGMA, MID_RADIUS = 4.0, 12
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
IVORY = np.array([0.80, 0.77, 0.68], np.float32)


def aged(images: np.ndarray, strength: float) -> np.ndarray:
    """uint8 [N, H, W, 3] -> uint8 [N, H, W, 3]; strength in [0, 1]."""
    if strength <= 0:
        return images.copy()
    s = np.float32(strength)
    x = images.astype(np.float32) / 255
    luma = (x @ LUMA)[..., None]

    fine = luma - gaussian(luma, FINE_SIGMA, FINE_RADIUS)
    mid = luma - gaussian(luma, MID_SIGMA, MID_RADIUS)
    x = x + 2.5 * s * fine + 1.2 * s * np.minimum(mid, 0)

    grey = (x @ LUMA)[..., None]
    x = grey + (x - grey) * (1 - 0.55 * s)
    x = x * np.array([1 + 0.06 * s, 1 + 0.02 * s, 1 - 0.14 * s], np.float32)

    grey = (x @ LUMA)[..., None]
    highlight = np.clip((grey - 0.6) / 0.4, 0, 1) * (0.4 * s)
    x = x + (IVORY - x) * highlight
    x = 0.5 + (x - 0.5) * (1 - 0.15 * s) + 0.03 * s
    return np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)
