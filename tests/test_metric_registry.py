"""cfqa_metric.registry: built-ins, registration, and plugins through the entry-point group."""

import importlib.metadata
import sys

import numpy as np
import pytest

import cfqa_metric
from cfqa_metric import MetricSpec, registry

PLUGIN = '''
import numpy as np
from cfqa_metric import MetricSpec


def max_abs(original, compressed):
    """largest absolute difference"""
    return float(np.max(np.abs(original - compressed)))


max_abs.lower_better = True


def _psnr(original, compressed):
    return float(-10 * np.log10(np.mean((original - compressed) ** 2)))


psnr = MetricSpec("psnr", _psnr, lower_better=False, description="peak-free PSNR")
not_callable = 42
'''


@pytest.fixture
def isolated_registry(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


@pytest.fixture
def plugins(monkeypatch, tmp_path, isolated_registry):
    """A plugin module on sys.path and entry points naming it, as an installed plugin package would have."""
    (tmp_path / "cfqa_fake_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "cfqa_fake_plugin", raising=False)
    eps = [
        importlib.metadata.EntryPoint("max_abs", "cfqa_fake_plugin:max_abs", registry.ENTRY_POINT_GROUP),
        importlib.metadata.EntryPoint("psnr", "cfqa_fake_plugin:psnr", registry.ENTRY_POINT_GROUP),
        importlib.metadata.EntryPoint("broken", "cfqa_no_such_module:metric", registry.ENTRY_POINT_GROUP),
        importlib.metadata.EntryPoint(
            "not_callable", "cfqa_fake_plugin:not_callable", registry.ENTRY_POINT_GROUP
        ),
    ]
    real = importlib.metadata.entry_points

    def entry_points(**kwargs):
        if kwargs.get("group") == registry.ENTRY_POINT_GROUP:
            return importlib.metadata.EntryPoints(eps)
        return real(**kwargs)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)


def test_builtins_have_directions():
    assert {"mse", "cosine", "cka", "cka_upstream", "cka_debiased"} <= set(cfqa_metric.available())
    assert cfqa_metric.get("mse").lower_better is True
    assert cfqa_metric.get("cosine").lower_better is False
    assert cfqa_metric.get("cka").fn is cfqa_metric.cka


def test_register_get_and_errors(isolated_registry):
    def l1(original, compressed):
        return float(np.abs(original - compressed).mean())

    spec = cfqa_metric.register("l1", l1, lower_better=True, description="mean absolute error")
    assert cfqa_metric.get("l1") is spec and "l1" in cfqa_metric.available()
    assert spec(np.zeros((1, 1, 2, 2)), np.ones((1, 1, 2, 2))) == 1.0
    with pytest.raises(ValueError, match="already registered"):
        cfqa_metric.register("l1", l1, lower_better=True)
    cfqa_metric.register("l1", l1, lower_better=False, overwrite=True)
    assert cfqa_metric.get("l1").lower_better is False
    with pytest.raises(ValueError, match="unknown metric 'nope'; available: .*cosine"):
        cfqa_metric.get("nope")
    with pytest.raises(ValueError, match="callable"):
        cfqa_metric.register("x", 3, lower_better=None)


def test_plugins_are_listed_lazily_and_loaded_on_demand(plugins):
    names = cfqa_metric.available()
    assert {"max_abs", "psnr", "broken"} <= set(names)
    assert "cfqa_fake_plugin" not in sys.modules  # listing does not import plugins
    spec = cfqa_metric.get("max_abs")
    assert spec.lower_better is True and spec.description == "largest absolute difference"
    assert spec(np.zeros((1, 1, 2, 2)), np.full((1, 1, 2, 2), 3.0)) == 3.0
    psnr = cfqa_metric.get("psnr")
    assert isinstance(psnr, MetricSpec) and psnr.lower_better is False and psnr.name == "psnr"
    with pytest.raises(ValueError, match="plugin 'broken' .*cfqa_no_such_module.* failed to load"):
        cfqa_metric.get("broken")
    with pytest.raises(ValueError, match="not_callable.*int, not a callable"):
        cfqa_metric.get("not_callable")


def test_plugin_metric_scores_by_name(plugins):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 1, 4, 4)).astype(np.float32)

    class P:
        def __init__(self, level):
            self.original, self.compressed, self.label = x, x + level, level
            self.meta = {"original_id": "a", "task": "cls", "codec": "hm", "rate_index": int(level * 10)}

    res = cfqa_metric.score("max_abs", [P(0.1), P(0.2), P(0.5)])
    assert res["srocc"] == pytest.approx(1.0)
