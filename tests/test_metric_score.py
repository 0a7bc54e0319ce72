"""cfqa_metric.score over in-memory pairs (the cfqa_dataset.iter_pairs contract) and through iter_pairs."""

import sys
import types
import warnings
from typing import Any, NamedTuple

import numpy as np
import pytest

import cfqa_metric
from cfqa_metric import NaNGroupWarning, correlate, score


class Pair(NamedTuple):
    original: np.ndarray
    compressed: np.ndarray
    label: float | None
    meta: dict[str, Any]


SHAPES = {"cls": (1, 1, 9, 12), "seg": (2, 1, 7, 12)}


def make_pairs(n_originals=4, n_rates=5, seed=0, shared=True):
    """Grouped by original, the original array shared within a group (as iter_pairs yields them)."""
    rng = np.random.default_rng(seed)
    pairs = []
    for task, shape in SHAPES.items():
        for codec in ("hm", "vtm"):
            for o in range(n_originals):
                x = rng.normal(size=shape).astype(np.float32) * 3
                for r in range(n_rates):
                    level = (n_rates - r) * 0.1 * rng.uniform(0.5, 1.5)
                    y = (x + level * rng.normal(size=shape)).astype(np.float32)
                    drop = float(level + rng.normal(0, 0.05))
                    meta = {
                        "original_id": f"{task}{o}",
                        "task": task,
                        "codec": codec,
                        "rate_index": r,
                        "bpfp": 1.0 / (r + 1),
                        "label": drop,
                        "label_ce": float(level**2),
                    }
                    pairs.append(Pair(x if shared else x.copy(), y, drop, meta))
    return pairs


def _by_hand(pairs, fn, label="label"):
    values = [fn(p.original, p.compressed) for p in pairs]
    labels = [p.label if label == "label" else p.meta[label] for p in pairs]
    return correlate(
        values,
        labels,
        [p.meta["original_id"] for p in pairs],
        [p.meta["task"] for p in pairs],
        [p.meta["codec"] for p in pairs],
    )


@pytest.mark.parametrize("name", ["mse", "cosine", "cka", "cka_upstream", "cka_debiased"])
def test_score_registered_metric_equals_correlate_of_direct_values(name):
    pairs = make_pairs()
    fresh = make_pairs(shared=False)  # no sharing: the per-original cache cannot be involved
    res = score(name, pairs)
    want = _by_hand(fresh, getattr(cfqa_metric, name))
    assert res.keys() == want.keys()
    for key in ("srocc", "plcc", "krocc"):
        assert res[key] == pytest.approx(want[key], rel=1e-9)
    assert set(res["cells"]) == {"cls/hm", "cls/vtm", "seg/hm", "seg/vtm"}
    assert res["cells"]["seg/vtm"]["n_groups"] == 4


def test_score_list_callable_label_and_filters():
    pairs = make_pairs()

    def neg_mse(original, compressed):
        return -cfqa_metric.mse(original, compressed)

    res = score(["mse", neg_mse], pairs, tasks=["seg"], codecs=["vtm"])
    assert list(res) == ["mse", "neg_mse"]
    assert list(res["mse"]["cells"]) == ["seg/vtm"]
    assert res["neg_mse"]["plcc"] == pytest.approx(-res["mse"]["plcc"])
    ce = score("mse", pairs, label="label_ce")
    assert ce == _by_hand(pairs, cfqa_metric.mse, label="label_ce")
    mag = score(["mse", "cosine"], pairs, magnitude=True)
    assert mag["mse"]["sign"] == 1.0 and mag["cosine"]["sign"] == -1.0
    assert mag["cosine"]["srocc"] > 0
    with pytest.raises(ValueError, match="no registered direction"):
        score(neg_mse, pairs, magnitude=True)


def test_metric_values_table():
    pairs = make_pairs(n_originals=2, n_rates=3)
    table = cfqa_metric.metric_values(["mse", "cosine"], pairs)
    assert list(table.columns) == [
        "original_id",
        "task",
        "codec",
        "rate_index",
        "bpfp",
        "label",
        "mse",
        "cosine",
    ]
    assert len(table) == len(pairs)
    assert table["mse"].iloc[4] == pytest.approx(cfqa_metric.mse(pairs[4].original, pairs[4].compressed))


def test_missing_labels_are_skipped_with_a_warning():
    pairs = make_pairs(n_originals=3)
    pairs = [
        p._replace(label=None, meta={**p.meta, "label": None}) if i % 5 == 0 else p
        for i, p in enumerate(pairs)
    ]
    with pytest.warns(UserWarning, match="rows have no 'label' and are skipped"):
        res = score("mse", pairs)
    assert sum(c["n_rows"] for c in res["cells"].values()) == len(pairs) - len(pairs[::5])


def test_bad_metric_output_and_empty_selection():
    pairs = make_pairs(n_originals=1, n_rates=2)

    def broken(original, compressed):
        return float("nan")

    with pytest.raises(ValueError, match="metric 'broken' returned nan for original 'cls0', task 'cls'"):
        score(broken, pairs)
    with pytest.raises(ValueError, match="no pairs to score"):
        score("mse", pairs, tasks=["dpt"])
    with pytest.raises(ValueError, match="unique"):
        score(["mse", "mse"], pairs)
    bare = [p._replace(meta={"task": "cls"}) for p in pairs]
    with pytest.raises(ValueError, match="pair 0: meta lacks"):
        score("mse", bare)


def test_paths_go_through_cfqa_dataset_iter_pairs(monkeypatch):
    seen = {}
    pairs = make_pairs(n_originals=2, n_rates=3)

    def iter_pairs(data, tasks=None, codecs=None):
        seen.update(data=data, tasks=tasks, codecs=codecs)
        return iter([p for p in pairs if tasks is None or p.meta["task"] in tasks])

    fake = types.ModuleType("cfqa_dataset")
    fake.iter_pairs = iter_pairs
    monkeypatch.setitem(sys.modules, "cfqa_dataset", fake)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NaNGroupWarning)
        res = score("cosine", "some/folder", tasks=["cls"])
    assert seen == {"data": "some/folder", "tasks": ["cls"], "codecs": None}
    assert set(res["cells"]) == {"cls/hm", "cls/vtm"}


def test_score_a_written_cfqa_dataset_folder(tmp_path, monkeypatch):
    """Integration with cfqa_dataset: a small synthetic dataset written to disk and scored by path."""
    synthetic = pytest.importorskip("cfqa_dataset.synthetic")
    cfqa_dataset = pytest.importorskip("cfqa_dataset")
    for key in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.setenv(key, "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    originals, compressed = synthetic.synthetic_rows({"cls": (1, 1, 9, 16), "seg": (2, 1, 7, 16)}, 3, seed=0)
    folder = cfqa_dataset.write_dataset(tmp_path / "ds", originals, compressed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NaNGroupWarning)
        by_path = score(["mse", "cosine"], str(folder), tasks=["seg"])
        in_memory = score(["mse", "cosine"], list(cfqa_dataset.iter_pairs(str(folder), tasks=["seg"])))
    assert by_path == in_memory
    assert all(cell.startswith("seg/") for cell in by_path["mse"]["cells"])
    assert by_path["mse"]["n_groups"] == 3 * len(by_path["mse"]["cells"])


def test_progress_callback_counts_pairs():
    pairs = make_pairs(n_originals=1, n_rates=3)
    seen = []
    score("mse", pairs, progress=seen.append)
    assert seen == list(range(1, len(pairs) + 1))
