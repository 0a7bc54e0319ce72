"""Commands of cfqa_metric: `cfqa score` and `cfqa reference-table` (merged into the root `cfqa` app)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.table import Table

from cfqa_metric.protocol import PROTOCOLS
from cfqa_metric.reference import LOG_METRICS, reference_table
from cfqa_metric.scoring import score

__all__ = ["app"]

app = typer.Typer(
    help="Score feature-quality metrics against the CFQA task-drop labels.", no_args_is_help=True
)

_NAMES = {"plcc": "PLCC", "srocc": "SROCC", "krocc": "KROCC"}


def _split(values: list[str] | None) -> list[str] | None:
    """Repeatable options that also accept comma-separated lists: --tasks cls,seg --tasks dpt."""
    if not values:
        return None
    return [v for item in values for v in item.split(",") if v]


def _console() -> Console:
    console = Console()
    if not console.is_terminal:
        # Piped or captured output: do not wrap the wide table at 80 columns.
        console.width = 240
    return console


def _fmt(v: float) -> str:
    return "nan" if math.isnan(v) else f"{v:.4f}"


_TASK_ORDER = ("cls", "seg", "dpt")
_CODEC_ORDER = ("hm", "vtm", "hyperprior_multi_task", "hyperprior_task_specific")


def _paper_order(cell: str) -> tuple:
    """The paper's row order (HM, VTM, hyperprior; cls, seg, dpt), unknown names after, alphabetically."""
    task, codec = cell.split("/", 1)

    def rank(name: str, order: tuple[str, ...]) -> tuple[int, str]:
        return (order.index(name) if name in order else len(order), name)

    return (rank(codec, _CODEC_ORDER), rank(task, _TASK_ORDER))


def _paper_table(results: dict[str, dict[str, Any]], title: str) -> Table:
    """Rows codec x task, columns PLCC/SROCC/KROCC per metric, as the paper lays out its table."""
    table = Table(title=title)
    table.add_column("codec")
    table.add_column("task")
    for name in results:
        for stat in ("plcc", "srocc", "krocc"):
            table.add_column(f"{name} {_NAMES[stat]}", justify="right")
    first = next(iter(results.values()))
    cells = sorted(first["cells"], key=_paper_order)
    for cell in cells:
        task, codec = cell.split("/", 1)
        row = [codec, task]
        for res in results.values():
            row += [_fmt(res["cells"][cell][s]) for s in ("plcc", "srocc", "krocc")]
        table.add_row(*row)
    mean = ["mean", ""]
    for res in results.values():
        mean += [_fmt(res[s]) for s in ("plcc", "srocc", "krocc")]
    table.add_row(*mean, style="bold")
    return table


@app.command("score")
def score_command(
    metric: Annotated[list[str], typer.Option("--metric", "-m", help="Registered metric name; repeatable.")],
    data: Annotated[str, typer.Option("--data", help="Dataset folder or Hub repo id.")],
    tasks: Annotated[list[str] | None, typer.Option("--tasks", help="Tasks to keep (cls,seg,dpt).")] = None,
    codecs: Annotated[list[str] | None, typer.Option("--codecs", help="Codecs to keep.")] = None,
    protocol: Annotated[str, typer.Option(help=f"One of {', '.join(PROTOCOLS)}.")] = "per_reference",
    label: Annotated[
        str, typer.Option(help="Label column: label, or label_ce for the cls companion.")
    ] = "label",
    fit: Annotated[str | None, typer.Option(help="logistic4 or logistic5: add fitted PLCC and RMSE.")] = None,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples of originals for CIs (0 = off).")] = 0,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full result as JSON.")] = False,
) -> None:
    """Score metrics on a CFQA dataset and print the paper-style table (codec x task; PLCC/SROCC/KROCC)."""
    # A live pair counter on an interactive stderr only: piped output (and --json) stays clean.
    status = Console(stderr=True)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        console=status,
        transient=True,
        disable=not status.is_terminal,
    ) as bar:
        job = bar.add_task("scoring pairs", total=None)
        try:
            results = score(
                list(metric),
                data,
                tasks=_split(tasks),
                codecs=_split(codecs),
                label=label,
                protocol=protocol,
                fit=fit,
                bootstrap=bootstrap,
                seed=seed,
                progress=lambda done: bar.update(job, description=f"scored {done:,} pairs"),
            )
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
    if as_json:
        typer.echo(json.dumps(results, indent=2))
        return
    _console().print(_paper_table(results, f"{data}: {protocol}, label={label}"))
    for name, res in results.items():
        if res["n_nan_groups"]:
            typer.echo(
                f"{name}: {res['n_nan_groups']} of {res['n_groups']} groups NaN (constant or < 2 rows)"
            )


@app.command("reference-table")
def reference_table_command(
    log: Annotated[
        Path, typer.Argument(help="Reference log: '<name>[.ext] <label> <mse> <cos> <cka>' lines.")
    ],
    list_file: Annotated[Path, typer.Argument(metavar="LIST", help="List file of the original names.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Reproduce the reference protocol's PLCC/SROCC from one of its logs (per original, nanmean)."""
    for path in (log, list_file):
        if not path.is_file():
            raise typer.BadParameter(f"no such file: {path}")
    try:
        table = reference_table(log, list_file)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if as_json:
        typer.echo(json.dumps(table, indent=2))
        return
    out = Table(title=f"{log.name} (per original, nanmean; signed)")
    out.add_column("metric")
    for stat in ("PLCC", "SROCC", "NaN groups"):
        out.add_column(stat, justify="right")
    for m in LOG_METRICS:
        row = table[m]
        out.add_row(m, _fmt(row["plcc"]), _fmt(row["srocc"]), f"{row['n_nan_groups']}/{row['n_groups']}")
    _console().print(out)
