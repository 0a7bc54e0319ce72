"""The offline mini profile for real at a tiny size (seconds of training)."""

import json

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from builders import heads as H  # noqa: E402
from builders import mini  # noqa: E402
from builders.features import extract  # noqa: E402

TINY = dict(
    hidden_size=48, num_layers=4, num_heads=2, n_train=48, n_val=4, batch_size=8, train_steps=3, n_bins=32
)


@pytest.fixture(autouse=True)
def _offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    cache = tmp_path_factory.mktemp("mini_cache")
    model, heads, report = mini.build_mini(cache, seed=0, threads=1, **TINY)
    return cache, model, heads, report


def test_build_report_and_files(built):
    cache, model, heads, report = built
    assert report["cached"] is False and report["train"]["steps"] == 3
    for key in (
        "cls_top1",
        "cls_top1_majority",
        "seg_miou",
        "seg_miou_all_background",
        "dpt_rmse",
        "dpt_rmse_mean_predictor",
    ):
        assert np.isfinite(report[key]), key
    assert set(report["timings"]) >= {"scenes_s", "train_s", "eval_s"}
    folder = cache / f"mini-{mini.MiniConfig(seed=0, **TINY).key()}"
    assert (folder / "heads.safetensors").is_file() and (folder / "model").is_dir()
    assert json.loads((folder / "report.json").read_text())["key"] == report["key"]
    # No temporary folders are left behind.
    assert [p.name for p in cache.iterdir()] == [folder.name]
    assert model.config.hidden_size == 48 and model.config.patch_size == 14


def test_rerun_loads_cache(built):
    cache, model, heads, report = built
    model2, heads2, report2 = mini.build_mini(cache, seed=0, threads=1, **TINY)
    assert report2["cached"] is True and report2["cls_top1"] == report["cls_top1"]
    assert report2["heads_path"] == report["heads_path"]
    for a, b in zip(model.state_dict().values(), model2.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    (s,) = mini.mini_samples("dpt", 1, seed=5)
    f1 = extract(model, s.image, "dpt", profile="mini")
    f2 = extract(model2, s.image, "dpt", profile="mini")
    assert f1.tobytes() == f2.tobytes()
    assert heads.task_value("dpt", f1, s.target) == heads2.task_value("dpt", f2, s.target)


def test_training_is_reproducible(built, tmp_path):
    """Same configuration and thread count -> bit-identical weights (a fresh build in another folder)."""
    _, model, heads, report = built
    model2, heads2, _ = mini.build_mini(tmp_path, seed=0, threads=1, **TINY)
    for a, b in zip(model.state_dict().values(), model2.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert torch.equal(heads.heads["dpt"].conv_depth.weight, heads2.heads["dpt"].conv_depth.weight)


def test_heads_load_by_path(built):
    _, model, heads, report = built
    loaded = H.load(report["heads_path"])
    for task in ("cls", "seg", "dpt"):
        (s,) = mini.mini_samples(task, 1, seed=1)
        feat = extract(model, s.image, task, profile="mini")
        value = loaded.task_value(task, feat, s.target)
        assert value == heads.task_value(task, feat, s.target)
        assert (value["raw_ce"] is not None) == (task == "cls")


def test_mini_samples_layouts(built):
    _, model, _, _ = built
    expected = {"cls": (1, 1, 65, 48), "seg": (2, 1, 65, 48), "dpt": (2, 4, 65, 48)}
    for task, shape in expected.items():
        samples = mini.mini_samples(task, 3, seed=2)
        assert [s.name for s in samples] == [f"mini_{task}_{i:04d}" for i in range(3)]
        assert extract(model, samples[0].image, task, profile="mini").shape == shape
    assert (
        mini.mini_samples("seg", 3, seed=2)[1].target.tobytes()
        == mini.mini_samples("seg", 3, 2)[1].target.tobytes()
    )


def test_mini_cls_selection_is_correctly_classified(built):
    _, model, heads, _ = built
    chosen = mini.mini_samples("cls", 1, seed=0, model=model, heads=heads)
    assert len(chosen) == 1
    for s in chosen:
        assert heads.task_value("cls", extract(model, s.image, "cls", profile="mini"), s.target)["raw"] == 1.0


def test_unknown_task():
    with pytest.raises(ValueError):
        mini.mini_samples("det", 1, seed=0)


@pytest.mark.slow
def test_default_budget_quality(tmp_path):
    """The default build (minutes of CPU) clears the quality bar of the issue on held-out scenes."""
    _, _, report = mini.build_mini(tmp_path, seed=0)
    assert report["cls_top1"] > 3 * report["cls_top1_majority"]
    assert report["seg_miou"] > report["seg_miou_all_background"] + 15
    assert report["dpt_rmse"] < 0.6 * report["dpt_rmse_mean_predictor"]


def test_default_threads_in_range():
    before = torch.get_num_threads()
    n = mini.default_threads()
    assert 1 <= n <= 4 and isinstance(n, int)
    assert torch.get_num_threads() == before  # the probe restores the setting
