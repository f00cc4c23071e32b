"""Triton Python backend model `aged`: a CLASSICAL "aged look" photo filter, not a face-aging model.

The operator lives in aged_filter.py (NumPy): amplified fine skin texture and deepened creases
(high-pass boosts of the luminance), lower saturation, a warm yellowed cast, greyed highlights and
softer contrast; its docstring says what STRENGTH does. It does not predict how a face ages.
Locality: an output pixel depends only on input pixels within aged_filter.RADIUS = 12 px.
Everything else (request checks, grouping by tile shape and strength) is request_handling.py's
filter_model, which the comic model shares.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from aged_filter import RADIUS, aged  # noqa: E402
from request_handling import filter_model  # noqa: E402

TritonPythonModel = filter_model("aged", aged, RADIUS)
