"""The statistics behind every figure a report shows: proportions with their 95% intervals,
differences of proportions, and the distribution of interval-censored waiting times.

Wilson's score interval for a proportion: unlike the normal approximation it stays inside
[0, 1], is not zero-width at 0% or 100%, and covers close to 95% even for a few dozen recipients.
Newcombe's hybrid score interval for a difference of two proportions is built from the two
Wilson intervals, so "campaign vs baseline" is called out only when that interval excludes 0.
Turnbull's self-consistency (EM) estimator gives the nonparametric maximum-likelihood
distribution of a time known only to lie in an interval (L, R]; R = inf is right-censored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054


def wilson(successes, trials, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of the Wilson score interval; NaN where there are no trials."""
    k = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denominator = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denominator
        half = z / denominator * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        low, high = np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)
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

    Self-consistency iterations over the cells between consecutive ends; each costs O(rows +
    cells) with cumulative sums, so a bootstrap of a few hundred fits stays well under a second.
    """
    lower, upper = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    weights = np.ones(len(lower)) if weights is None else np.asarray(weights, dtype=float)
    edges = np.unique(np.concatenate([lower, upper[np.isfinite(upper)]]))
    left, right = edges, np.append(edges[1:], np.inf)
    first = np.searchsorted(edges, lower)  # the cell starting at `lower`
    last = np.where(
        np.isfinite(upper), np.searchsorted(edges, upper), len(edges)
    )  # one past the cell ending at `upper`
    mass = np.full(len(edges), 1 / len(edges)) if start is None else start.copy()
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


def quantile_intervals(
    lower, upper, weights, quantiles=(0.5, 0.9), *, resamples: int = 60, seed: int = 0
) -> list[tuple[float, float, float]]:
    """For each q: (estimate, low, high), the q-quantile of the Turnbull fit and a 95% bootstrap
    percentile interval (recipients resampled with replacement, as multinomial weights over the
    distinct intervals). Bounds are NaN when over 2.5% of resamples never reach q."""
    lower, upper, weights = (np.asarray(v, dtype=float) for v in (lower, upper, weights))
    fit = turnbull(lower, upper, weights)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(resamples):
        resampled = rng.multinomial(int(weights.sum()), weights / weights.sum())
        refit = turnbull(lower, upper, resampled, start=fit.mass, iterations=200)
        draws.append([refit.quantile(q) for q in quantiles])
    draws = np.array(draws).reshape(resamples, len(quantiles))
    answers = []
    for column, q in enumerate(quantiles):
        values = draws[:, column]
        if np.isnan(values).mean() > 0.025:
            answers.append((fit.quantile(q), float("nan"), float("nan")))
        else:
            answers.append(
                (fit.quantile(q), float(np.nanpercentile(values, 2.5)), float(np.nanpercentile(values, 97.5)))
            )
    return answers
