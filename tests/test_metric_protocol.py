"""cfqa_metric.protocol: per-reference and pooled protocols vs scipy, result shape, bootstrap, comparisons."""

import json
import math
import warnings

import numpy as np
import pytest
from scipy import stats as ss

import cfqa_metric
from cfqa_metric import NaNGroupWarning, correlate, paired_bootstrap, williams_pooled

STATS = {"srocc": ss.spearmanr, "plcc": ss.pearsonr, "krocc": ss.kendalltau}


def _fake_rows(seed=0, n_originals=30):
    """Rows of 2 tasks x 2 codecs x originals x ~6 rates, with ties, constant and one-row groups."""
    rng = np.random.default_rng(seed)
    pred, ref, ids, tasks, codecs = [], [], [], [], []
    for task in ("cls", "seg"):
        for codec in ("hm", "vtm"):
            for o in range(n_originals):
                m = int(rng.integers(1, 9))
                level = rng.integers(0, 6, m).astype(float)
                pred += list(level + rng.integers(0, 3, m))
                ref += list(
                    np.round(level * rng.uniform(0.5, 2) + rng.normal(0, 1, m)) if o % 7 else np.zeros(m)
                )
                ids += [f"img{o}"] * m
                tasks += [task] * m
                codecs += [codec] * m
    # Shuffle: the protocol must not depend on row order.
    perm = rng.permutation(len(pred))
    return (
        np.asarray(pred)[perm],
        np.asarray(ref)[perm],
        np.asarray(ids)[perm],
        np.asarray(tasks)[perm],
        np.asarray(codecs)[perm],
    )


def _scipy_protocol(pred, ref, ids, tasks, codecs, protocol):
    """Straightforward reference: loop over cells and originals, scipy per group, nanmean."""
    cells = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for cell in sorted({f"{t}/{c}" for t, c in zip(tasks, codecs, strict=True)}):
            t, c = cell.split("/")
            in_cell = (tasks == t) & (codecs == c)
            out = {}
            for name, fn in STATS.items():
                if protocol == "pooled":
                    out[name] = fn(pred[in_cell], ref[in_cell]).statistic
                    continue
                vals = []
                for o in sorted(set(ids[in_cell])):
                    sel = in_cell & (ids == o)
                    vals.append(fn(pred[sel], ref[sel]).statistic if sel.sum() >= 2 else np.nan)
                out[name] = np.nanmean(vals)
                out[f"{name}_nan"] = int(np.isnan(vals).sum())
                out["n_groups"] = len(vals)
            cells[cell] = out
    return cells


@pytest.mark.parametrize("protocol", ["per_reference", "pooled"])
def test_protocol_equals_scipy_loop(protocol):
    pred, ref, ids, tasks, codecs = _fake_rows()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NaNGroupWarning)
        res = correlate(pred, ref, ids, tasks, codecs, protocol=protocol)
    want = _scipy_protocol(pred, ref, ids, tasks, codecs, protocol)
    assert list(res["cells"]) == sorted(want)
    for cell, w in want.items():
        got = res["cells"][cell]
        for name in STATS:
            assert got[name] == pytest.approx(w[name], rel=1e-12, abs=1e-12), (cell, name)
        if protocol == "per_reference":
            assert got["n_groups"] == w["n_groups"]
            assert got["n_nan_groups"] == w["srocc_nan"] > 0
    for name in STATS:
        assert res[name] == pytest.approx(np.mean([res["cells"][c][name] for c in want]))


def test_result_is_plain_json_and_warns_about_nan_groups():
    pred, ref, ids, tasks, codecs = _fake_rows(seed=4)
    with pytest.warns(NaNGroupWarning, match="constant or shorter"):
        res = correlate(pred, ref, ids, tasks, codecs, fit="logistic4", bootstrap=20)
    json.dumps(res, allow_nan=True)
    for key in ("srocc", "plcc", "krocc", "plcc_fitted", "rmse", "srocc_ci_low", "krocc_ci_high"):
        assert type(res[key]) is float
    cell = res["cells"]["cls/hm"]
    assert {"srocc", "plcc", "krocc", "n_groups", "n_nan_groups", "plcc_fitted", "rmse"} <= set(cell)
    assert type(cell["n_groups"]) is int and type(cell["plcc"]) is float
    assert res["n_groups"] == sum(c["n_groups"] for c in res["cells"].values())


def test_fit_adds_fitted_plcc_and_rmse_per_cell():
    pred, ref, ids, tasks, codecs = _fake_rows(seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NaNGroupWarning)
        res = correlate(pred, ref, ids, tasks, codecs, protocol="pooled", fit="logistic5")
    sel = (tasks == "seg") & (codecs == "vtm")
    mapped = cfqa_metric.fit_logistic(pred[sel], ref[sel], "logistic5")
    cell = res["cells"]["seg/vtm"]
    assert cell["rmse"] == pytest.approx(math.sqrt(np.mean((mapped - ref[sel]) ** 2)))
    assert cell["plcc_fitted"] == pytest.approx(ss.pearsonr(mapped, ref[sel]).statistic)
    assert cell["plcc"] == pytest.approx(ss.pearsonr(pred[sel], ref[sel]).statistic)


def test_magnitude_flips_by_direction():
    pred = [0.9, 0.8, 0.5, 0.95, 0.7, 0.6]
    ref = [0.0, 1.0, 3.0, 0.0, 2.0, 2.5]
    ids = ["a", "a", "a", "b", "b", "b"]
    signed = correlate(pred, ref, ids)
    assert signed["srocc"] == -1.0 and "sign" not in signed
    mag = correlate(pred, ref, ids, magnitude=True, lower_better=False)
    assert mag["srocc"] == 1.0 and mag["sign"] == -1.0
    assert mag["cells"]["all/all"]["plcc"] == pytest.approx(-signed["cells"]["all/all"]["plcc"])
    with pytest.raises(ValueError, match="lower_better"):
        correlate(pred, ref, ids, magnitude=True)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"predictions": [1.0, 2.0], "references": [1.0]}, "references has 1"),
        ({"predictions": [1.0, math.nan, 2.0]}, r"predictions\[1\] is nan"),
        ({"references": [1.0, 2.0, math.inf]}, r"references\[2\] is inf"),
        ({"predictions": [], "references": [], "reference_ids": []}, "empty"),
        ({"reference_ids": ["a", None, "b"]}, r"reference_ids\[1\] is missing"),
        ({"reference_ids": ["a", "b"]}, "reference_ids has 2"),
        ({"tasks": ["cls"]}, "tasks has 1"),
        ({"predictions": [[1.0, 2.0, 3.0]]}, "one-dimensional"),
        ({"predictions": ["x", "y", "z"]}, "must be numbers"),
        ({"protocol": "global"}, "unknown protocol"),
        ({"fit": "cubic"}, "unknown fit"),
        ({"bootstrap": -1}, "bootstrap"),
        ({"confidence": 1.5}, "confidence"),
    ],
)
def test_bad_input_raises_clear_errors(kwargs, match):
    args = {"predictions": [1.0, 2.0, 3.0], "references": [1.0, 3.0, 2.0], "reference_ids": ["a", "a", "a"]}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        correlate(**args)


def test_bootstrap_is_seeded_and_brackets_the_estimate():
    pred, ref, ids, tasks, codecs = _fake_rows(seed=6, n_originals=40)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NaNGroupWarning)
        a = correlate(pred, ref, ids, tasks, codecs, bootstrap=200, seed=1)
        b = correlate(pred, ref, ids, tasks, codecs, bootstrap=200, seed=1)
        c = correlate(pred, ref, ids, tasks, codecs, bootstrap=200, seed=2)
        pooled = correlate(pred, ref, ids, tasks, codecs, bootstrap=30, seed=1, protocol="pooled")
    assert a == b
    assert a["srocc_ci_low"] != c["srocc_ci_low"]
    for res in (a, pooled):
        for name in STATS:
            assert res[f"{name}_ci_low"] < res[name] < res[f"{name}_ci_high"]
            for cell in res["cells"].values():
                assert cell[f"{name}_ci_low"] <= cell[name] <= cell[f"{name}_ci_high"]


def test_bootstrap_resamples_originals_not_rows():
    # Every original has the same perfect within-group ordering: resampling originals cannot move the
    # per-reference SROCC, while resampling rows would.
    rng = np.random.default_rng(7)
    ids = np.repeat([f"o{i}" for i in range(20)], 5)
    ref = np.tile(np.arange(5.0), 20)
    pred = ref * rng.uniform(1, 3, ids.size).round(3) + np.repeat(rng.normal(0, 10, 20), 5)
    pred = ref + np.repeat(rng.normal(0, 10, 20), 5)
    res = correlate(pred, ref, ids, bootstrap=100)
    assert res["srocc_ci_low"] == res["srocc_ci_high"] == res["srocc"] == 1.0


def test_bootstrap_width_shrinks_with_more_originals():
    def width(n):
        rng = np.random.default_rng(8)
        ids = np.repeat(np.arange(n).astype(str), 6)
        ref = np.tile(np.arange(6.0), n)
        pred = ref + rng.normal(0, 2.0, ids.size)
        res = correlate(pred, ref, ids, bootstrap=300, seed=0)
        return res["srocc_ci_high"] - res["srocc_ci_low"]

    assert width(400) < 0.5 * width(25)


def test_group_correlations_frame():
    pred, ref, ids, tasks, codecs = _fake_rows(seed=9, n_originals=5)
    frame = cfqa_metric.group_correlations(pred, ref, ids, tasks, codecs)
    row = frame[(frame.cell == "seg/hm") & (frame.reference_id == "img3")].iloc[0]
    sel = (tasks == "seg") & (codecs == "hm") & (ids == "img3")
    assert row.n_rows == sel.sum()
    if sel.sum() >= 2 and len(set(pred[sel])) > 1 and len(set(ref[sel])) > 1:
        assert row.srocc == pytest.approx(ss.spearmanr(pred[sel], ref[sel]).statistic)
    assert len(frame) == 4 * 5


def test_paired_bootstrap_identical_and_clearly_different_metrics():
    rng = np.random.default_rng(10)
    ids = np.repeat(np.arange(60).astype(str), 8)
    ref = rng.normal(size=ids.size)
    good = ref + rng.normal(0, 0.2, ids.size)
    bad = rng.normal(size=ids.size)
    same = paired_bootstrap(good, good, ref, ids, n_resamples=200)
    assert same["difference"] == 0.0 and same["p_value"] == 1.0
    diff = paired_bootstrap(good, bad, ref, ids, n_resamples=200, seed=3)
    assert diff["difference"] == pytest.approx(diff["a"] - diff["b"])
    assert 0 < diff["ci_low"] < diff["difference"] < diff["ci_high"]
    assert diff["p_value"] < 0.01
    pooled = paired_bootstrap(good, bad, ref, ids, n_resamples=50, protocol="pooled", statistic="plcc")
    assert pooled["a"] == pytest.approx(ss.pearsonr(good, ref).statistic)
    with pytest.raises(ValueError, match="predictions_b has"):
        paired_bootstrap(good, bad[:-1], ref, ids)
    with pytest.raises(ValueError, match="unknown statistic"):
        paired_bootstrap(good, bad, ref, ids, statistic="auc")


def test_williams_pooled_matches_the_formula_on_pooled_correlations():
    rng = np.random.default_rng(11)
    ref = rng.normal(size=200)
    a = ref + rng.normal(0, 0.8, 200)
    b = a + rng.normal(0, 0.8, 200)
    res = williams_pooled(a, b, ref)
    r_a = ss.pearsonr(ref, a).statistic
    r_b = ss.pearsonr(ref, b).statistic
    r_ab = ss.pearsonr(a, b).statistic
    want = cfqa_metric.williams_test(r_a, r_b, r_ab, 200)
    assert res["t"] == pytest.approx(want.statistic) and res["p_value"] == pytest.approx(want.pvalue)
    assert res["t"] > 0 and res["n"] == 200
    ranks = williams_pooled(a, b, ref, statistic="srocc")
    assert ranks["r_a"] == pytest.approx(ss.spearmanr(ref, a).statistic)
    with pytest.raises(ValueError, match="lengths differ"):
        williams_pooled(a, b[:5], ref)
