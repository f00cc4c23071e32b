"""Triton Python backend model `comic`: a CLASSICAL comic/cartoon operator, not a learned model.

The operator lives in comic_filter.py (NumPy): bilateral smoothing, luminance bands (cel
shading), and dark ink outlines from a difference of Gaussians; its docstring says what STRENGTH
does. Locality: an output pixel depends only on input pixels within comic_filter.RADIUS = 11 px.
Everything else (request checks, grouping by tile shape and strength) is request_handling.py's
filter_model, which the aged model shares.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from comic_filter import RADIUS, comic  # noqa: E402
from request_handling import filter_model  # noqa: E402

TritonPythonModel = filter_model("comic", comic, RADIUS)
