"""95% intervals for rates (methods.md, "Flow metrics": every rate comes with its counts
and an interval -- Wilson for a single proportion, clustered by household when a
household contributes several events to one rate).

Three cases, one idea (a Wilson score interval on an effective sample size):

* ``wilson_interval(x, n)``: x successes out of n independent trials (unweighted, each
  household once in the rate). Wilson (1927): the roots in p of
  (p_hat - p)^2 = z^2 p (1 - p) / n, i.e.
  centre = (p_hat + z^2/2n) / (1 + z^2/n),
  half width = z / (1 + z^2/n) * sqrt(p_hat (1 - p_hat) / n + z^2 / 4n^2).
  Stays inside [0, 1] and is sensible at x = 0 or x = n, unlike the Wald interval.
* ``ratio_variance(...)``: the rate is a ratio p = sum_h Y_h / sum_h N_h over clusters h
  (households), where Y_h and N_h are the household's (weighted) successes and trials in
  this rate. Its linearised (sandwich) variance with the usual CR1 small-sample factor is
  V = G / (G - 1) * sum_h (Y_h - p N_h)^2 / (sum_h N_h)^2, G = number of households.
  This covers weights (person-level rates with household size as weight) and households
  contributing several events (rates pooled over periods).
* ``proportion_interval(...)``: Wilson on the effective sample size n_eff = p (1 - p) / V
  (Korn & Graubard 1998 idea; Wilson form as in Dean & Pagano 2015), so a design that is
  really independent and unweighted gets almost exactly the plain Wilson interval, and a
  clustered or unequally weighted one gets a wider interval. When p is 0 or 1, V is 0
  and n_eff falls back to Kish's (sum N_h)^2 / sum N_h^2.

All functions are vectorised over numpy arrays / pandas Series; a rate with no trials
(n = 0) gets NaN bounds.
"""
from __future__ import annotations

import numpy as np

Z95 = 1.959963984540054  # the 97.5% standard normal quantile


def wilson_interval(successes, n, z: float = Z95):
    """Wilson score interval for successes/n; returns (low, high) arrays (NaN if n = 0)."""
    x = np.asarray(successes, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = x / n
        z2n = z * z / n
        centre = (p + z2n / 2) / (1 + z2n)
        half = z / (1 + z2n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        low = np.clip(centre - half, 0.0, 1.0)
        high = np.clip(centre + half, 0.0, 1.0)
    bad = ~(n > 0)
    return np.where(bad, np.nan, low), np.where(bad, np.nan, high)


def ratio_variance(sum_y, sum_n, sum_yy, sum_yn, sum_nn, clusters):
    """CR1 linearised variance of p = sum_y / sum_n with households as clusters.

    Arguments are per-rate sums over households h of Y_h, N_h, Y_h^2, Y_h N_h, N_h^2 and
    the number of households G; sum_h (Y_h - p N_h)^2 is expanded so the engine only has
    to return these sums."""
    sy, sn = np.asarray(sum_y, float), np.asarray(sum_n, float)
    syy, syn, snn = np.asarray(sum_yy, float), np.asarray(sum_yn, float), np.asarray(sum_nn, float)
    g = np.asarray(clusters, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = sy / sn
        squares = np.maximum(syy - 2 * p * syn + p * p * snn, 0.0)
        factor = np.where(g > 1, g / (g - 1), np.nan)
        return factor * squares / (sn * sn)


def effective_n(p, variance, sum_n, sum_nn):
    """n_eff = p (1 - p) / V; Kish's (sum N)^2 / sum N^2 when V = 0 (p is 0 or 1)."""
    p, v = np.asarray(p, float), np.asarray(variance, float)
    sn, snn = np.asarray(sum_n, float), np.asarray(sum_nn, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        kish = sn * sn / snn
        design = p * (1 - p) / v
    return np.where((v > 0) & np.isfinite(design), design, kish)


def proportion_interval(sum_y, sum_n, sum_yy=None, sum_yn=None, sum_nn=None, clusters=None,
                        z: float = Z95):
    """(rate, low, high) for a rate.

    Only ``sum_y`` and ``sum_n`` given: independent unweighted trials, plain Wilson.
    With the cluster sums (see ``ratio_variance``): Wilson on the effective sample size."""
    sy, sn = np.asarray(sum_y, float), np.asarray(sum_n, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(sn > 0, sy / sn, np.nan)
    if sum_yy is None:
        low, high = wilson_interval(sy, sn, z)
        return rate, low, high
    v = ratio_variance(sy, sn, sum_yy, sum_yn, sum_nn, clusters)
    n_eff = effective_n(rate, v, sn, sum_nn)
    low, high = wilson_interval(rate * n_eff, n_eff, z)
    bad = ~(sn > 0)
    return rate, np.where(bad, np.nan, low), np.where(bad, np.nan, high)
