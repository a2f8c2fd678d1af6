"""How much of the symptom's movement each component's movement accounts for: a linear attribution learnt on the
baseline (the counterfactual question "had this component not moved, how much would the symptom have?").

The symptom's metric is regressed (ridge, on standardised deviations from the baseline medians) on the metric of
the same name of each candidate component, over the baseline rows. After the onset, a candidate's contribution is
its coefficient times its deviation, averaged over the rows; its share is that over the symptom's own mean
deviation, clipped to [0, 1]. A candidate whose movement, as the baseline has seen the two move together, would
produce the symptom's movement gets a share near 1; one that moved but never moved the symptom before gets ~0.

It needs a baseline long enough to learn from (``MIN_ROWS``); without one, or when the symptom did not move,
every share is zero and the ranking stands on the movements alone.
"""

from __future__ import annotations

import numpy as np

from kubestack.models.rootcause_metrics import nanmedian

MIN_ROWS = 48          # four hours of 5-minute rows
RIDGE = 0.1            # per row, on standardised regressors: keeps collinear candidates from cancelling out


def symptom_shares(values: np.ndarray, after: np.ndarray, symptom_column: int,
                   candidates: dict[str, int]) -> dict[str, float]:
    """Share of the symptom's movement after the onset that each candidate (name -> column) accounts for."""
    base = ~after
    if base.sum() < MIN_ROWS or not candidates:
        return {}
    seen = np.isfinite(values[base])
    names = [n for n, j in candidates.items() if seen[:, j].any()]
    if not names or not seen[:, symptom_column].any():
        return {}
    columns = [candidates[n] for n in names]
    x = values[:, columns]
    y = values[:, symptom_column]
    dx = np.nan_to_num(x - nanmedian(x[base], seen[:, columns].sum(axis=0)))
    dy = np.nan_to_num(y - nanmedian(y[base][:, None], seen[:, [symptom_column]].sum(axis=0))[0])
    moved = float(dy[after].mean())
    spread = np.sqrt((dx[base] ** 2).mean(axis=0))
    usable = spread > 0
    if moved == 0 or not usable.any():
        return {}
    z = dx[:, usable] / spread[usable]
    rows = z[base]
    beta = np.linalg.solve(rows.T @ rows + RIDGE * len(rows) * np.eye(rows.shape[1]), rows.T @ dy[base])
    contribution = (z[after] * beta).mean(axis=0) / moved
    kept = [n for n, ok in zip(names, usable) if ok]
    return {n: float(np.clip(c, 0.0, 1.0)) for n, c in zip(kept, contribution)}
