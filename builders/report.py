"""The report of a built CFQA folder: the paper-style table with bootstrap CIs, rate-vs-label curves,
scatter plots.

`write_report(DIR)` reads `DIR/cfqa` (the dataset), evaluates every requested metric once per compressed row
(or takes the values the pipeline computed),
correlates with the labels under the paper's protocol and writes `DIR/report/` (index.md, table.md, table.csv,
rows.csv, scores.json, PNG plots). `cfqa report DIR` calls it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPORT_DIRNAME = "report"
STATS = ("plcc", "srocc", "krocc")


def metric_rows(dataset_dir: str | Path, metrics: Sequence[str]) -> pd.DataFrame:
    """One row per compressed feature: identity, rate, ``label``, ``label_ce`` and every metric's value."""
    from cfqa_metric.scoring import metric_values

    rows = metric_values(list(metrics), str(dataset_dir), extra_labels=("label_ce",))
    if rows.empty:
        raise ValueError(f"{dataset_dir}: the dataset has no compressed rows to score")
    return rows


def correlation_table(
    rows: pd.DataFrame, metrics: Sequence[str], label: str = "label", bootstrap: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """`cfqa_metric.correlate` of every metric against ``label`` (rows with a missing label are left out)."""
    from cfqa_metric.protocol import correlate

    usable = rows[rows[label].notna()]
    if usable.empty:
        return {}
    return {
        name: correlate(
            usable[name].to_numpy(float),
            usable[label].to_numpy(float),
            usable["original_id"].to_numpy(str),
            usable["task"].to_numpy(str),
            usable["codec"].to_numpy(str),
            bootstrap=bootstrap,
            seed=seed,
        )
        for name in metrics
    }


def _fmt(cell: dict[str, Any], stat: str) -> str:
    value = cell.get(stat)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "nan"
    text = f"{value:+.3f}"
    low, high = cell.get(f"{stat}_ci_low"), cell.get(f"{stat}_ci_high")
    if low is not None and high is not None and not (math.isnan(low) or math.isnan(high)):
        text += f" [{low:+.2f}, {high:+.2f}]"
    return text


def table_frame(scores: dict[str, Any]) -> pd.DataFrame:
    """The paper-style table: rows (codec, task), columns (metric, statistic)."""
    cells = sorted(
        {cell for result in scores.values() for cell in result["cells"]},
        key=lambda c: (c.split("/")[1], c.split("/")[0]),
    )
    data = {}
    for cell in cells:
        task, codec = cell.split("/")
        data[(codec, task)] = {
            f"{metric} {stat.upper()}": _fmt(result["cells"].get(cell, {}), stat)
            for metric, result in scores.items()
            for stat in STATS
        }
    frame = pd.DataFrame.from_dict(data, orient="index")
    frame.index.names = ["codec", "task"]
    return frame


def _markdown(frame: pd.DataFrame) -> str:
    header = ["codec", "task", *frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (codec, task), row in frame.iterrows():
        lines.append("| " + " | ".join([codec, task, *row.astype(str)]) + " |")
    return "\n".join(lines)


def _task_panels(rows: pd.DataFrame, path: Path, draw) -> None:
    """One panel per task; ``draw(ax, task, codec, group)`` for each codec's rows; saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted(rows["task"].unique())
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        for codec, group in rows[rows["task"] == task].groupby("codec"):
            draw(ax, task, codec, group)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, markerscale=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_rate_label(rows: pd.DataFrame, path: Path, label: str = "label") -> None:
    """Mean label vs mean BPFP per rate point, one panel per task, one line per codec."""

    def draw(ax, task, codec, group):
        curve = group.groupby("rate_index")[["bpfp", label]].mean().sort_values("bpfp")
        ax.plot(curve["bpfp"], curve[label], marker="o", label=codec)
        ax.set_xscale("log")
        ax.set_xlabel("bits per feature point (BPFP)")
        ax.set_ylabel(f"mean {label} (task drop, positive = worse)")
        ax.set_title(task)

    _task_panels(rows, path, draw)


def plot_scatter(rows: pd.DataFrame, metric: str, path: Path, label: str = "label") -> None:
    """Metric value vs label for every compressed row, one panel per task, coloured by codec."""

    def draw(ax, task, codec, group):
        ax.scatter(group[metric], group[label], s=6, alpha=0.5, label=codec)
        ax.set_xlabel(metric)
        ax.set_ylabel(label)
        ax.set_title(f"{task}: {metric} vs {label}")

    _task_panels(rows, path, draw)


def rate_sanity(rows: pd.DataFrame, label: str = "label") -> dict[str, float]:
    """Per task/codec cell: mean per-original SROCC(BPFP, label); negative = labels worsen as rate falls."""
    from cfqa_metric.protocol import correlate

    usable = rows[rows[label].notna()]
    result = correlate(
        usable["bpfp"].to_numpy(float),
        usable[label].to_numpy(float),
        usable["original_id"].to_numpy(str),
        usable["task"].to_numpy(str),
        usable["codec"].to_numpy(str),
    )
    return {cell: values["srocc"] for cell, values in result["cells"].items()}


def write_report(
    out: str | Path,
    metrics: Sequence[str] = ("mse", "cosine", "cka"),
    bootstrap: int = 1000,
    seed: int = 0,
    dataset_dir: str | Path | None = None,
    rows: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Write `out/report/` for the dataset in ``dataset_dir`` (default `out/cfqa`); returns a summary dict.

    ``rows`` (the :func:`metric_rows` table) skips reading the features again when the caller already has
    the metric values (the pipeline computes them in its workers).
    """
    out = Path(out)
    dataset_dir = Path(dataset_dir) if dataset_dir is not None else out / "cfqa"
    if not (dataset_dir / "README.md").is_file():
        raise FileNotFoundError(f"no CFQA dataset folder (with README.md card) at {dataset_dir}")
    folder = out / REPORT_DIRNAME
    folder.mkdir(parents=True, exist_ok=True)
    if rows is None:
        rows = metric_rows(dataset_dir, metrics)
    rows.to_csv(folder / "rows.csv", index=False)

    labels = ["label"] + (["label_ce"] if rows["label_ce"].notna().any() else [])
    scores = {lab: correlation_table(rows, metrics, lab, bootstrap, seed) for lab in labels}
    (folder / "scores.json").write_text(json.dumps(scores, indent=1, sort_keys=True))
    sanity = rate_sanity(rows)

    sections = [
        "# CFQA report",
        f"Dataset: `{dataset_dir}` — {len(rows)} compressed features, "
        f"{rows['original_id'].nunique()} originals, tasks {sorted(rows['task'].unique())}, "
        f"codecs {sorted(rows['codec'].unique())}.",
        "Correlations are signed, computed per original over its compressed versions and averaged over "
        "originals "
        "(the paper's protocol); brackets give 95% bootstrap intervals resampling originals "
        f"({bootstrap} resamples, seed {seed}).",
    ]
    for lab in labels:
        frame = table_frame(scores[lab])
        frame.to_csv(folder / f"table_{lab}.csv")
        sections += [f"## Table: metrics vs `{lab}`", _markdown(frame)]
    sections.append(
        "## Sanity: mean per-original SROCC(BPFP, label)\nNegative means labels worsen as the rate falls."
    )
    sections.append("\n".join(f"- {cell}: {value:+.3f}" for cell, value in sorted(sanity.items())))

    plot_rate_label(rows, folder / "rate_label.png")
    sections += ["## Rate vs label", "![rate vs label](rate_label.png)"]
    for metric in metrics:
        plot_scatter(rows, metric, folder / f"scatter_{metric}.png")
        sections += [f"## {metric} vs label", f"![{metric} vs label](scatter_{metric}.png)"]
    (folder / "index.md").write_text("\n\n".join(sections) + "\n")
    return {
        "report": str(folder / "index.md"),
        "rows": len(rows),
        "rate_sanity_srocc": sanity,
        "mean_rate_sanity_srocc": float(np.nanmean(list(sanity.values()))) if sanity else float("nan"),
        "scores": {lab: {m: {k: r[k] for k in STATS} for m, r in s.items()} for lab, s in scores.items()},
    }
