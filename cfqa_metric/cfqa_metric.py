# Copyright the CFQA developers. Licensed under the Apache License, Version 2.0.
"""CFQA metric: correlation of a feature-quality metric with the task-performance drop it should predict."""

import datasets
import evaluate

import cfqa_metric

_DESCRIPTION = """
CFQA (Compressed Feature Quality Assessment) asks how well a quality metric computed on a compressed
intermediate feature predicts the drop in downstream task performance that the compression caused.
This module takes one metric value per compressed feature (`predictions`), the task drop of that feature
(`references`, positive = worse) and the original feature it was compressed from (`reference_ids`),
and reports Spearman (SROCC), Pearson (PLCC) and Kendall (KROCC) correlations.

The default protocol is the paper's `per_reference` one: for every original feature the metric is
correlated with the drop over its compressed versions, then the correlations are averaged (`nanmean`)
over the originals, separately for every (task, codec) cell. Correlations are signed: a metric that
rises with distortion (MSE) correlates positively, one that falls (cosine, CKA) negatively.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `float`): metric value of each compressed feature.
    references (`list` of `float`): task drop of each compressed feature (positive = worse).
    reference_ids (`list` of `str`): id of the original feature each row was compressed from.
    tasks (`list` of `str`): task of each row (`cls`, `seg`, `dpt`).
    codecs (`list` of `str`): codec of each row (`hm`, `vtm`, ...). The configuration `"single_cell"`
        (`evaluate.load("cfqa_metric", "single_cell")`) takes neither: all rows form the cell `all/all`.
    protocol (`str`): `"per_reference"` (default, the paper's) or `"pooled"` (all rows of a cell at once).
    fit (`str`, optional): `"logistic4"` or `"logistic5"` adds `plcc_fitted` and `rmse` after a VQEG monotonic
        logistic mapping fitted per cell. Defaults to None.
    bootstrap (`int`): number of resamples of the ORIGINALS for percentile confidence intervals
        (`<stat>_ci_low`, `<stat>_ci_high`). Defaults to 0 (off).
    seed (`int`): seed of the bootstrap. Defaults to 0.
    confidence (`float`): level of the intervals. Defaults to 0.95.
    magnitude (`bool`): multiply every correlation by the sign a good metric has (reported as `sign`), so that
        +1 is perfect agreement. Needs `lower_better`. Defaults to False (signed, as the paper).
    lower_better (`bool`, optional): True if the metric rises with distortion (MSE), False if it falls
        (cosine).

Returns:
    srocc (`float`): mean over cells of the SROCC, in [-1, 1].
    plcc (`float`): mean over cells of the PLCC, in [-1, 1].
    krocc (`float`): mean over cells of the KROCC (tau-b), in [-1, 1].
    n_groups (`int`), n_nan_groups (`int`): originals in total, and those left out (constant or < 2 rows).
    cells (`dict`): per `"<task>/<codec>"`: `srocc`, `plcc`, `krocc`, `n_groups`, `n_nan_groups`, `n_rows`
        (plus `plcc_fitted`, `rmse`, confidence intervals when asked).

Examples:
    >>> import evaluate
    >>> cfqa = evaluate.load("cfqa_metric")
    >>> results = cfqa.compute(
    ...     predictions=[0.1, 0.3, 0.2, 0.5, 0.4, 0.9],
    ...     references=[0.0, 2.0, 1.0, 0.0, 3.0, 5.0],
    ...     reference_ids=["a", "a", "a", "b", "b", "b"],
    ...     tasks=["cls"] * 6,
    ...     codecs=["hm"] * 6,
    ... )
    >>> results["srocc"], round(results["plcc"], 4), results["cells"]["cls/hm"]["n_groups"]
    (0.75, 0.8379, 2)

    One cell, pooled over all its rows instead of per original:

    >>> single = evaluate.load("cfqa_metric", "single_cell")
    >>> pooled = single.compute(
    ...     predictions=[0.1, 0.3, 0.2, 0.5, 0.4, 0.9],
    ...     references=[0.0, 2.0, 1.0, 0.0, 3.0, 5.0],
    ...     reference_ids=["a", "a", "a", "b", "b", "b"],
    ...     protocol="pooled",
    ... )
    >>> round(pooled["cells"]["all/all"]["srocc"], 4)
    0.5508
"""

_CITATION = """
@inproceedings{gao2025cfqa,
  title     = {Compressed Feature Quality Assessment: Dataset and Baselines},
  author    = {Gao and Zhou and Lin and Lin},
  booktitle = {Proceedings of the 33rd ACM International Conference on Multimedia},
  year      = {2025},
  doi       = {10.1145/3746027.3758309},
  eprint    = {2506.07412},
  archivePrefix = {arXiv}
}
"""

# evaluate hands _compute only the columns of one fixed format, so optional cell columns are a configuration.
_CONFIGS = ("default", "single_cell")
_COLUMNS = {
    "predictions": datasets.Value("float64"),
    "references": datasets.Value("float64"),
    "reference_ids": datasets.Value("string"),
}


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class CfqaMetric(evaluate.Metric):
    """Per-reference (or pooled) SROCC/PLCC/KROCC of a feature-quality metric against the task drop."""

    def _info(self):
        if self.config_name not in _CONFIGS:
            raise ValueError(f"unknown configuration {self.config_name!r}; expected one of {_CONFIGS}")
        columns = dict(_COLUMNS)
        if self.config_name == "default":
            columns.update(tasks=datasets.Value("string"), codecs=datasets.Value("string"))
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(columns),
            reference_urls=["https://arxiv.org/abs/2506.07412"],
        )

    def _compute(
        self,
        predictions,
        references,
        reference_ids,
        tasks=None,
        codecs=None,
        protocol="per_reference",
        fit=None,
        bootstrap=0,
        seed=0,
        confidence=0.95,
        magnitude=False,
        lower_better=None,
    ):
        return cfqa_metric.correlate(
            predictions,
            references,
            reference_ids,
            tasks,
            codecs,
            protocol=protocol,
            fit=fit,
            bootstrap=bootstrap,
            seed=seed,
            confidence=confidence,
            magnitude=magnitude,
            lower_better=lower_better,
        )
