"""The `cfqa` command line: `build`, `report` and `demo` here; `score`, `reference-table` from cfqa_metric;
`import`, `verify`, `push` from cfqa_dataset. Heavy libraries are imported inside the commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(
    help="CFQA: the Compressed Feature Quality Assessment benchmark.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
console = Console()


def _split(values: list[str] | None) -> tuple[str, ...] | None:
    """Accept both `--tasks cls --tasks seg` and `--tasks cls,seg`."""
    if not values:
        return None
    return tuple(v.strip() for item in values for v in item.split(",") if v.strip())


@app.command()
def build(
    out: Annotated[Path, typer.Option(help="Output folder (dataset in OUT/cfqa, report in OUT/report).")],
    profile: Annotated[
        str, typer.Option(help="mini (offline, CPU, minutes) or paper (DINOv2-g, real data).")
    ] = "mini",
    tasks: Annotated[
        list[str] | None, typer.Option(help="Tasks (cls, seg, dpt); repeat or comma-separate.")
    ] = None,
    codecs: Annotated[list[str] | None, typer.Option(help="Codecs; default: the profile's four.")] = None,
    originals: Annotated[int | None, typer.Option(help="Originals per task (default 100).")] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address, e.g. tcp://host:8786.")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Local Dask workers (default: cores; 0 = no Dask).")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="TOML or JSON config file; flags override it.")] = None,
    train_steps: Annotated[
        int | None, typer.Option(help="Mini profile: training steps of backbone+heads.")
    ] = None,
    hyperprior_steps: Annotated[
        int | None, typer.Option(help="Training steps per learned codec model.")
    ] = None,
    bootstrap: Annotated[int | None, typer.Option(help="Bootstrap resamples for the report's CIs.")] = None,
) -> None:
    """Regenerate CFQA: originals -> codecs -> encode/decode -> labels -> dataset -> scores -> report."""
    from builders.config import BuildConfig
    from builders.pipeline import build as run_build

    flags = {
        "profile": profile,
        "out": str(out),
        "tasks": _split(tasks),
        "codecs": _split(codecs),
        "originals": originals,
        "scheduler": scheduler,
        "workers": workers,
        "bootstrap": bootstrap,
    }
    if train_steps is not None:
        flags["mini"] = {"train_steps": train_steps}
    if hyperprior_steps is not None:
        flags["hyperprior"] = {"steps": hyperprior_steps}
    try:
        cfg = (
            BuildConfig.from_file(config, **flags)
            if config
            else BuildConfig(**{k: v for k, v in flags.items() if v is not None})
        )
    except (ValueError, FileNotFoundError) as err:
        raise typer.BadParameter(str(err)) from None
    summary = run_build(cfg)
    _print_summary(summary)


def _print_summary(summary: dict) -> None:
    from rich.table import Table

    table = Table(title="Stage times")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    for stage, seconds in summary.get("stage_seconds", {}).items():
        table.add_row(stage, f"{seconds:.1f}")
    console.print(table)
    console.print(f"dataset: {summary['dataset']}")
    console.print(f"report:  {summary['report']}")
    console.print(f"mean per-original SROCC(BPFP, label): {summary['mean_rate_sanity_srocc']:+.3f}")


@app.command()
def report(
    out: Annotated[Path, typer.Argument(help="A built folder (with OUT/cfqa).")],
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the CIs.")] = 1000,
    seed: int = 0,
    metric: Annotated[
        list[str] | None, typer.Option(help="Metrics to report (default mse, cosine, cka).")
    ] = None,
) -> None:
    """Regenerate OUT/report from a built folder."""
    from builders.report import write_report

    summary = write_report(
        out, metrics=_split(metric) or ("mse", "cosine", "cka"), bootstrap=bootstrap, seed=seed
    )
    console.print(Path(summary["report"]).read_text())
    console.print(json.dumps({"report": summary["report"], "rows": summary["rows"]}))


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Output folder of the mini build.")] = Path("out/mini"),
    workers: Annotated[int | None, typer.Option(help="Local Dask workers (default: cores).")] = None,
) -> None:
    """`make demo`: build the mini profile, load it with datasets, score it with evaluate, print the table."""
    from builders.demo import run_demo

    run_demo(out, workers=workers, console=console)


def _merge_package_commands() -> None:
    from cfqa_dataset.cli import app as dataset_app
    from cfqa_metric.cli import app as metric_app

    app.add_typer(metric_app)
    app.add_typer(dataset_app)


_merge_package_commands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
