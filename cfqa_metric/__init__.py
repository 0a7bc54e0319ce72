"""cfqa_metric: score feature-quality metrics against the task-drop labels of CFQA.

Plain functions (numpy/scipy; no `evaluate` import): statistics and protocols (`correlate`,
`paired_bootstrap`, `williams_test`), baseline feature metrics (`mse`, `cosine`, `cka`, `cka_upstream`,
`cka_debiased`), the metric registry (`register`, `get`, `available`; plugins via the `cfqa_metric.metrics`
entry-point group), `score` over a CFQA dataset, and `reference_table` for the reference system's own logs.
The `evaluate` module is `cfqa_metric/cfqa_metric.py`: `evaluate.load(cfqa_metric.MODULE_PATH)`.
"""

from cfqa_metric.baselines import cka, cka_debiased, cka_upstream, clear_caches, cosine, mse
from cfqa_metric.hub import MODULE_PATH, published_table, push_to_hub_space
from cfqa_metric.protocol import (
    PROTOCOLS,
    STATISTICS,
    NaNGroupWarning,
    check_inputs,
    correlate,
    group_correlations,
    paired_bootstrap,
    williams_pooled,
)
from cfqa_metric.reference import read_list, read_log, reference_table
from cfqa_metric.registry import ENTRY_POINT_GROUP, MetricSpec, available, get, register
from cfqa_metric.scoring import metric_values, score
from cfqa_metric.stats import FITS, WilliamsResult, fit_logistic, krocc, plcc, rmse, srocc, williams_test

__all__ = [
    "ENTRY_POINT_GROUP",
    "FITS",
    "MODULE_PATH",
    "PROTOCOLS",
    "STATISTICS",
    "MetricSpec",
    "NaNGroupWarning",
    "WilliamsResult",
    "available",
    "check_inputs",
    "cka",
    "cka_debiased",
    "cka_upstream",
    "clear_caches",
    "correlate",
    "cosine",
    "fit_logistic",
    "get",
    "group_correlations",
    "krocc",
    "metric_values",
    "mse",
    "paired_bootstrap",
    "plcc",
    "published_table",
    "push_to_hub_space",
    "read_list",
    "read_log",
    "reference_table",
    "register",
    "rmse",
    "score",
    "srocc",
    "williams_pooled",
    "williams_test",
]
