"""The statistics behind every figure a report shows: proportions with their 95% intervals,
differences of proportions, and the distribution of interval-censored waiting times.

Wilson's score interval for a proportion: unlike the normal approximation it stays inside
[0, 1], is not zero-width at 0% or 100%, and covers close to 95% even for a few dozen recipients.
Newcombe's hybrid score interval for a difference of two proportions is built from the two
Wilson intervals, so "campaign vs baseline" is called out only when that interval excludes 0.
Turnbull's self-consistency (EM) estimator gives the nonparametric maximum-likelihood
distribution of a time known only to lie in an interval (L, R]; R = inf is right-censored. Its
mass lives on the innermost intervals (a lower end followed by an upper end, nothing between);
where polls of different schedules mix, it may gather mass that lies anywhere in a wider interval
into one narrow innermost one. So a quantile's bounds do not come from the fit: whatever the
distribution inside the intervals, the sample's q-quantile lies between the time by which a
share q had possibly ended (lower ends) and the time by which a share q had certainly ended
(upper ends); a bootstrap of those two adds the sampling error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054


def wilson(successes, trials, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of the Wilson score interval; NaN where there are no trials. The ends are kept
    on either side of the rate itself: at 0% and 100% rounding can put an end a hair past it,
    and an error bar of -1e-16 is refused by matplotlib and reads as nonsense in a table."""
    k = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denominator = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denominator
        half = z / denominator * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        low = np.clip(np.minimum(centre - half, p), 0, 1)
        high = np.clip(np.maximum(centre + half, p), 0, 1)
    empty = n <= 0
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def difference(k1, n1, k2, n2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """p1 - p2 with Newcombe's 95% interval (hybrid score, method 10): (difference, low, high)."""
    k1, n1, k2, n2 = (np.asarray(v, dtype=float) for v in (k1, n1, k2, n2))
    with np.errstate(invalid="ignore", divide="ignore"):
        p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1)
    l2, u2 = wilson(k2, n2)
    d = p1 - p2
    return d, d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


@dataclass
class Turnbull:
    """The NPMLE of a distribution from intervals (L, R]: `mass` on the cells (`left`, `right`]
    between consecutive interval ends. Where within a cell its mass lies is not identified; the
    CDF and quantiles below spread it evenly across the cell."""

    left: np.ndarray
    right: np.ndarray
    mass: np.ndarray

    def cdf(self, t) -> np.ndarray:
        t = np.asarray(t, dtype=float)[..., None]
        finite = np.isfinite(self.right)
        width = np.where(finite, self.right - self.left, 1.0)
        covered = np.where(finite, np.clip((t - self.left) / width, 0, 1), 0.0)
        return (covered * self.mass).sum(axis=-1)

    def quantile(self, q: float) -> float:
        """The time by which a share `q` reached its end; NaN if the estimate never gets there."""
        cumulative = np.cumsum(self.mass)
        j = int(np.searchsorted(cumulative, q - 1e-12))
        if j >= len(self.mass) or not np.isfinite(self.right[j]):
            return float("nan")
        before = cumulative[j] - self.mass[j]
        share = (q - before) / self.mass[j] if self.mass[j] > 0 else 1.0
        return float(self.left[j] + share * (self.right[j] - self.left[j]))


def turnbull(
    lower, upper, weights=None, *, start: np.ndarray | None = None, tolerance: float = 1e-7, iterations: int = 3000
) -> Turnbull:
    """Fit the NPMLE to intervals (lower, upper] (upper = inf: still waiting), each with a weight.

    Self-consistency iterations over the cells between consecutive ends, with mass only on the
    innermost ones (a cell that starts at no lower end, or ends at no upper end, is covered by
    fewer intervals than its neighbour and holds none); each iteration costs O(rows + cells)
    with cumulative sums, so a bootstrap of a few hundred fits stays well under a second.
    """
    lower, upper = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    weights = np.ones(len(lower)) if weights is None else np.asarray(weights, dtype=float)
    edges = np.unique(np.concatenate([lower, upper[np.isfinite(upper)]]))
    left, right = edges, np.append(edges[1:], np.inf)
    first = np.searchsorted(edges, lower)  # the cell starting at `lower`
    last = np.where(
        np.isfinite(upper), np.searchsorted(edges, upper), len(edges)
    )  # one past the cell ending at `upper`
    innermost = np.isin(left, lower) & np.isin(right, upper)  # inf is in `upper` if any still wait
    mass = innermost / innermost.sum() if start is None else start.copy()
    share = weights / weights.sum()
    for _ in range(iterations):
        cumulative = np.concatenate([[0.0], np.cumsum(mass)])
        likelihood = cumulative[last] - cumulative[first]
        ratio = share / np.where(likelihood > 0, likelihood, 1)
        pull = np.bincount(first, ratio, len(edges) + 1) - np.bincount(last, ratio, len(edges) + 1)
        updated = mass * np.cumsum(pull)[:-1]
        done = np.abs(updated - mass).max() < tolerance
        mass = updated
        if done:
            break
    return Turnbull(left, right, mass)


def envelope(lower, upper, weights, q: float) -> tuple[np.ndarray, np.ndarray]:
    """(earliest, latest) the sample's q-quantile can be, whatever happened inside the intervals:
    the lower end by which a share q had possibly ended, the upper end by which it certainly had
    (inf when too few had ended). `weights` may hold one sample a row (a bootstrap at once)."""
    weights = np.atleast_2d(np.asarray(weights, dtype=float))
    needed = q * weights.sum(axis=1, keepdims=True) - 1e-9
    ends = []
    for values in (lower, upper):
        order = np.argsort(values, kind="stable")
        reached = np.cumsum(weights[:, order], axis=1) >= needed
        at = np.asarray(values, dtype=float)[order][reached.argmax(axis=1)]
        ends.append(np.where(reached.any(axis=1), at, np.inf))
    return ends[0], ends[1]


def quantile_intervals(
    lower, upper, weights, quantiles=(0.5, 0.9), *, resamples: int = 200, seed: int = 0
) -> list[tuple[float, float, float]]:
    """For each q: (estimate, low, high). The estimate is the Turnbull fit's q-quantile, kept
    inside the sample's envelope (see `envelope`); the 95% interval runs from the 2.5th percentile
    of the bootstrap samples' earliest to the 97.5th of their latest (recipients resampled with
    replacement, as multinomial weights over the distinct intervals), so it holds both what the
    polls cannot tell and the sampling error. Bounds are NaN where too few had ended to say."""
    lower, upper, weights = (np.asarray(v, dtype=float) for v in (lower, upper, weights))
    fit = turnbull(lower, upper, weights)
    rng = np.random.default_rng(seed)
    resampled = rng.multinomial(int(weights.sum()), weights / weights.sum(), size=resamples)
    answers = []
    for q in quantiles:
        (earliest,), (latest,) = envelope(lower, upper, weights, q)
        earliests, latests = envelope(lower, upper, resampled, q)
        low = min(float(np.percentile(earliests, 2.5)), earliest)
        high = max(float(np.percentile(latests, 97.5)), latest)
        estimate = float(np.clip(fit.quantile(q), earliest, latest))
        if not np.isfinite(high):
            low = high = float("nan")
        answers.append((estimate, low, high))
    return answers
