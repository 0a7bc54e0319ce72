"""Baseline feature-quality metrics: MSE, token-wise cosine, linear CKA (correct, upstream parity, debiased).

Inputs are (N, C, T, D) arrays (any of the three task shapes; the shape is data). One original is compared
with many compressed versions in a row, so each metric keeps the prepared state of the most recent
original (centred slices, Gram matrices, normalised tokens) and reuses it while the same, unmodified
array object comes back. Arrays are treated as read-only while they are being scored.

Where a Gram matrix is needed the cheaper of the T x T (token) and D x D (feature) forms is used;
both forms give the same number (tests check this).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["clear_caches", "cka", "cka_debiased", "cka_upstream", "cosine", "mse"]

_COS_EPS = 1e-8
_CKA_EPS = 1e-8
FORMS = ("tokens", "features")


def _check_pair(original: Any, compressed: Any) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(original, np.ndarray) or not isinstance(compressed, np.ndarray):
        raise ValueError(
            f"original and compressed must be numpy arrays, got {type(original).__name__} and "
            f"{type(compressed).__name__}"
        )
    if original.ndim != 4:
        raise ValueError(f"features must be 4-D (N, C, T, D), got original of shape {original.shape}")
    if original.shape != compressed.shape:
        raise ValueError(f"shape mismatch: original {original.shape} vs compressed {compressed.shape}")
    if original.size == 0:
        raise ValueError(f"empty feature of shape {original.shape}")
    return original, compressed


def _slices(a: np.ndarray) -> np.ndarray:
    """(N, C, T, D) -> (N*C, T, D) float64: the (n, c) slices the metrics are defined on."""
    n, c, t, d = a.shape
    return a.reshape(n * c, t, d).astype(np.float64)


def _finite(a: np.ndarray, name: str) -> None:
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} feature of shape {a.shape} contains NaN or inf")


class _OriginalCache:
    """One-slot cache of per-original state, keyed by array identity, shape and a checksum.

    The checksum (a float64 sum, one cheap pass) catches the common misuse of refilling the same buffer
    with another original; it is not a cryptographic guarantee.
    """

    def __init__(self, prepare: Callable[[np.ndarray], Any]) -> None:
        self._prepare = prepare
        self._obj: np.ndarray | None = None
        self._key: tuple | None = None
        self._state: Any = None

    def get(self, original: np.ndarray) -> Any:
        key = (original.shape, original.dtype.str, float(np.sum(original, dtype=np.float64)))
        if self._obj is not original or self._key != key:
            _finite(original, "original")
            self._state = self._prepare(original)
            self._obj, self._key = original, key
        return self._state

    def clear(self) -> None:
        self._obj = self._key = self._state = None


# --------------------------------------------------------------------------- MSE and cosine


def mse(original: np.ndarray, compressed: np.ndarray) -> float:
    """Mean squared error over the whole array (float64 accumulation). Lower is better."""
    x, y = _check_pair(original, compressed)
    diff = x.astype(np.float64) - y
    value = float(np.mean(diff * diff))
    if not np.isfinite(value):
        raise ValueError(f"mse is {value}: the features (shape {x.shape}) contain NaN or inf")
    return value


def _unit_tokens(a: np.ndarray) -> np.ndarray:
    s = _slices(a)
    norm = np.sqrt(np.einsum("std,std->st", s, s))
    return s / np.maximum(norm, _COS_EPS)[..., None]


_COSINE_CACHE = _OriginalCache(_unit_tokens)


def cosine(original: np.ndarray, compressed: np.ndarray) -> float:
    """Token-wise cosine similarity: per (n, c) slice every token is L2-normalised over D (eps 1e-8), the
    per-token dot products are averaged over tokens, then over the N*C slices. Higher is better."""
    x, y = _check_pair(original, compressed)
    ux = _COSINE_CACHE.get(x)
    _finite(y, "compressed")
    uy = _unit_tokens(y)
    return float(np.mean(np.einsum("std,std->st", ux, uy)))


# --------------------------------------------------------------------------- CKA


def _centred(a: np.ndarray) -> np.ndarray:
    s = _slices(a)
    return s - s.mean(axis=1, keepdims=True)


def _gram_t(s: np.ndarray) -> np.ndarray:
    # One 2-D product per slice: numpy hands ``a @ a.T`` of a 2-D array to the symmetric BLAS kernel
    # (syrk, half the work), which the stacked 3-D matmul does not.
    return np.stack([a @ a.T for a in s])


def _gram_d(s: np.ndarray) -> np.ndarray:
    return np.stack([a.T @ a for a in s])


def _fro(a: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum("sij,sij->s", a, a))


def _cka_form(t: int, d: int, form: str | None) -> str:
    """The reference CKA needs ||Xc Yc^T||^2: tokens form 1.5 T^2 D flops, features form 0.5 T D^2."""
    if form is None:
        return "tokens" if 3 * t < d else "features"
    if form not in FORMS:
        raise ValueError(f"unknown form {form!r}; expected one of {FORMS} or None")
    return form


@dataclass(frozen=True)
class _CkaState:
    form: str
    xc: np.ndarray
    gram: np.ndarray | None
    norm: np.ndarray


def _last_slice(a: np.ndarray) -> np.ndarray:
    return a[-1:, -1:]


def _prepare_cka(form: str, last_only: bool = False) -> Callable[[np.ndarray], _CkaState]:
    def prepare(original: np.ndarray) -> _CkaState:
        xc = _centred(_last_slice(original) if last_only else original)
        if form == "features":
            gram = _gram_d(xc)
            return _CkaState(form, xc, gram, _fro(gram))
        return _CkaState(form, xc, None, _fro(_gram_t(xc)))

    return prepare


_CKA_CACHES = {f: _OriginalCache(_prepare_cka(f)) for f in FORMS}
# The upstream variant only ever looks at the last slice; it keeps its own, smaller state.
_UPSTREAM_CACHES = {f: _OriginalCache(_prepare_cka(f, last_only=True)) for f in FORMS}


def _cka_slices(
    original: np.ndarray, compressed: np.ndarray, form: str | None, last_only: bool = False
) -> np.ndarray:
    x, y = _check_pair(original, compressed)
    caches = _UPSTREAM_CACHES if last_only else _CKA_CACHES
    state = caches[_cka_form(x.shape[2], x.shape[3], form)].get(x)
    _finite(y, "compressed")
    yc = _centred(_last_slice(y) if last_only else y)
    if state.form == "features":
        gy = _gram_d(yc)
        # ||Xc Yc^T||_F^2 = <Xc^T Xc, Yc^T Yc>_F: the cached D x D Gram of the original serves every version.
        num = np.einsum("sij,sij->s", state.gram, gy)
        norm_y = _fro(gy)
    else:
        cross = np.stack([a @ b.T for a, b in zip(state.xc, yc, strict=True)])
        num = np.einsum("sij,sij->s", cross, cross)
        norm_y = _fro(_gram_t(yc))
    return num / (state.norm * norm_y + _CKA_EPS)


def cka(original: np.ndarray, compressed: np.ndarray, *, form: str | None = None) -> float:
    """Linear CKA as the reference defines it, per (n, c) slice with tokens centred:
    ``||Xc Yc^T||_F^2 / (||Xc Xc^T||_F ||Yc Yc^T||_F + 1e-8)``, averaged over the N*C slices.
    Higher is better.

    ``form`` forces the ``"tokens"`` (T x T) or ``"features"`` (D x D) computation; by default the
    cheaper one.
    """
    return float(np.mean(_cka_slices(original, compressed, form)))


def cka_upstream(original: np.ndarray, compressed: np.ndarray, *, form: str | None = None) -> float:
    """Parity variant reproducing the reference code's aggregation bug: its slice loop assigns (``=``)
    instead of accumulating (``+=``) and then divides by N*C, so it reports ``CKA(last slice) / (N*C)``.
    Equal to :func:`cka` for cls (one slice), half of the last slice's CKA for seg, an eighth for dpt.
    Use it only to reproduce published numbers; :func:`cka` is the correct mean."""
    x, y = _check_pair(original, compressed)
    n, c = x.shape[:2]
    last = _cka_slices(x, y, form, last_only=True)[0]
    return float(last / (n * c))


# --------------------------------------------------------------------------- debiased CKA


def _debiased_form(t: int, d: int, form: str | None) -> str:
    """Standard CKA needs <K, L> with K = Xc Xc^T: tokens form 0.5 T^2 D flops, features form 1.5 T D^2."""
    if form is None:
        return "tokens" if t <= 3 * d else "features"
    if form not in FORMS:
        raise ValueError(f"unknown form {form!r}; expected one of {FORMS} or None")
    return form


@dataclass(frozen=True)
class _DebiasedState:
    form: str
    xc: np.ndarray
    gram: np.ndarray | None
    sq_rows: np.ndarray
    hsic_xx: np.ndarray


def _hsic_terms(dot: np.ndarray, sq_x: np.ndarray, sq_y: np.ndarray, n: int) -> np.ndarray:
    """Unbiased HSIC (Song et al. 2012) of centred linear kernels, up to the common 1 / (n (n - 3)).

    With centred features K 1 = 0, so the estimator reduces to row norms:
    <K, L> - n / (n - 2) <diag K, diag L> + tr K tr L / ((n - 1) (n - 2)).
    """
    return (
        dot
        - n / (n - 2.0) * np.einsum("st,st->s", sq_x, sq_y)
        + sq_x.sum(axis=1) * sq_y.sum(axis=1) / ((n - 1.0) * (n - 2.0))
    )


def _prepare_debiased(form: str) -> Callable[[np.ndarray], _DebiasedState]:
    def prepare(original: np.ndarray) -> _DebiasedState:
        t = original.shape[2]
        xc = _centred(original)
        sq = np.einsum("std,std->st", xc, xc)
        gram = _gram_t(xc) if form == "tokens" else None
        gxx = _fro(gram) ** 2 if form == "tokens" else _fro(_gram_d(xc)) ** 2
        return _DebiasedState(form, xc, gram, sq, _hsic_terms(gxx, sq, sq, t))

    return prepare


_DEBIASED_CACHES = {f: _OriginalCache(_prepare_debiased(f)) for f in FORMS}


def cka_debiased(original: np.ndarray, compressed: np.ndarray, *, form: str | None = None) -> float:
    """Debiased linear CKA (unbiased HSIC estimator; Kornblith et al. 2019, Nguyen et al. 2021), tokens as
    examples, per (n, c) slice, averaged over slices. Less biased than plain CKA when T is not much larger
    than D. Needs T >= 4. Higher is better."""
    x, y = _check_pair(original, compressed)
    t = x.shape[2]
    if t < 4:
        raise ValueError(f"debiased CKA needs at least 4 tokens, got T={t} (shape {x.shape})")
    state = _DEBIASED_CACHES[_debiased_form(t, x.shape[3], form)].get(x)
    _finite(y, "compressed")
    yc = _centred(y)
    sq_y = np.einsum("std,std->st", yc, yc)
    if state.form == "tokens":
        ly = _gram_t(yc)
        dot = np.einsum("sij,sij->s", state.gram, ly)
        lyy = _fro(ly) ** 2
    else:
        cross = state.xc.transpose(0, 2, 1) @ yc
        dot = np.einsum("sij,sij->s", cross, cross)
        lyy = _fro(_gram_d(yc)) ** 2
    hsic_xy = _hsic_terms(dot, state.sq_rows, sq_y, t)
    hsic_yy = _hsic_terms(lyy, sq_y, sq_y, t)
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.mean(hsic_xy / np.sqrt(state.hsic_xx * hsic_yy)))


def clear_caches() -> None:
    """Drop the cached per-original state of every baseline (frees the Gram matrices)."""
    for cache in (
        _COSINE_CACHE,
        *_CKA_CACHES.values(),
        *_UPSTREAM_CACHES.values(),
        *_DEBIASED_CACHES.values(),
    ):
        cache.clear()
