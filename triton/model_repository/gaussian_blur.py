"""The Gaussian blur the classical filters (comic, aged) share.

Linked into each of their version folders (`<model>/1/gaussian_blur.py -> ../../gaussian_blur.py`)
for the reason request_handling.py gives: Triton hands a model only its own folder.
"""

from __future__ import annotations

import numpy as np


def gaussian(x: np.ndarray, sigma: float, radius: int) -> np.ndarray:
    """Separable Gaussian blur of [N, H, W, C], edge padded, truncated at `radius`."""
    taps = np.exp(-np.arange(-radius, radius + 1) ** 2 / (2 * sigma**2)).astype(np.float32)
    taps /= taps.sum()
    h, w = x.shape[1], x.shape[2]
    padded = np.pad(x, ((0, 0), (radius, radius), (0, 0), (0, 0)), mode="edge")
    rows = sum(t * padded[:, i : i + h] for i, t in enumerate(taps))
    padded = np.pad(rows, ((0, 0), (0, 0), (radius, radius), (0, 0)), mode="edge")
    return sum(t * padded[:, :, i : i + w] for i, t in enumerate(taps))
