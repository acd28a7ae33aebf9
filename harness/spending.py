"""The alpha-spending function of the sequential rules (``harness.sequential`` on z
statistics, ``harness.sequential_t`` on paired t statistics)."""
from __future__ import annotations

import numpy as np
from scipy import special


def obrien_fleming_spending(fraction, alpha: float):
    """alpha(t) = 2 - 2 Phi(z(1 - alpha/2) / sqrt(t)): the one-sided alpha spent by
    information fraction t (alpha(1) = alpha; almost nothing early)."""
    fraction = np.asarray(fraction, dtype=float)
    return 2 * special.ndtr(-special.ndtri(1 - alpha / 2) / np.sqrt(fraction))
