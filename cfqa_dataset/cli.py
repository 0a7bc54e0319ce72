"""`cfqa import`, `cfqa verify`, `cfqa push` (merged into the root `cfqa` app by builders.cli)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

app = typer.Typer(
    help="CFQA dataset: import the official release, verify, push to the Hub.", no_args_is_help=True
)
console = Console(highlight=False, soft_wrap=True)


@app.command("import")
def import_cmd(
    release_dir: Annotated[
        Path, typer.Argument(help="Official release tree (org_feat/, compressed_feat/, ...).")
    ],
    out: Annotated[Path, typer.Argument(help="Dataset folder to write (e.g. ./cfqa).")],
    task: Annotated[
        list[str] | None, typer.Option("--task", help="Import only these tasks (repeatable).")
    ] = None,
    codec: Annotated[
        list[str] | None, typer.Option("--codec", help="Import only these codecs (repeatable).")
    ] = None,
    lists: Annotated[str, typer.Option(help="List files, relative to RELEASE_DIR.")] = "lists/{task}.txt",
    labels: Annotated[
        str, typer.Option(help="Label logs, relative to RELEASE_DIR.")
    ] = "labels/{codec}/{task}.txt",
    original_results: Annotated[
        str, typer.Option(help="Optional `<name> <value>` task results of the originals.")
    ] = "labels/original/{task}.txt",
    rate_points: Annotated[
        int | None, typer.Option(help="Required rate folders per codec/task (default: the codec's maximum).")
    ] = None,
    partial: Annotated[bool, typer.Option("--partial", help="Write what is valid despite errors.")] = False,
    check: Annotated[bool, typer.Option("--check", help="Validate every file, write nothing.")] = False,
    max_shard_mb: Annotated[int, typer.Option(help="Shard size bound in MiB.")] = 500,
) -> None:
    """Validate the official CFQA release and write it as a dataset folder (refuses on any error)."""
    from .release import ReleaseError, import_release

    try:
        report = import_release(
            release_dir,
            None if check else out,
            tasks=task,
            codecs=codec,
            lists=lists,
            labels=labels,
            original_results=original_results,
            rate_points=rate_points,
            partial=partial,
            max_shard_bytes=max_shard_mb * 1024**2,
        )
    except ReleaseError as exc:
        console.print(escape(exc.report.format()))
        console.print(
            "[red]refused: nothing written[/red] (fix the release, or --partial to keep what is valid)"
        )
        raise typer.Exit(1) from None
    console.print(escape(report.format()))
    if check:
        console.print(
            "[green]release is valid[/green]" if report.ok else "[yellow]release has errors[/yellow]"
        )


@app.command("verify")
def verify_cmd(path: Annotated[Path, typer.Argument(help="Dataset folder.")]) -> None:
    """Check a dataset folder against its sha256 manifest and card."""
    from .manifest import verify

    report = verify(path)
    for err in report.errors:
        console.print(f"[red]ERROR[/red] {escape(err)}")
    if not report.ok:
        console.print(f"[red]{path}: {len(report.errors)} problem(s)[/red]")
        raise typer.Exit(1)
    console.print(f"[green]{path}: OK[/green] ({report.checked} files match the manifest)")


@app.command("push")
def push_cmd(
    out: Annotated[Path, typer.Argument(help="Dataset folder, or a `cfqa build` folder (uses OUT/cfqa).")],
    repo_id: Annotated[str, typer.Argument(help="Hub dataset repo, e.g. user/cfqa.")],
    config: Annotated[
        list[str] | None, typer.Option("--config", help="Push only these configs (repeatable), e.g. cls-hm.")
    ] = None,
    private: Annotated[bool, typer.Option("--private", help="Create the repo private.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be uploaded; change nothing.")
    ] = False,
    revision: Annotated[str | None, typer.Option(help="Branch to push to.")] = None,
    message: Annotated[str | None, typer.Option(help="Commit message.")] = None,
) -> None:
    """Upload changed shards, the regenerated card and the manifest (token from HF's usual places)."""
    from .hub import push

    if not (out / "README.md").is_file() and (out / "cfqa" / "README.md").is_file():
        out = out / "cfqa"  # a build folder: its dataset is OUT/cfqa
    try:
        plan = push(
            out,
            repo_id,
            configs=config,
            private=private,
            dry_run=dry_run,
            revision=revision,
            commit_message=message,
        )
    except ValueError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(1) from None
    except Exception as exc:  # Hub/network failures: a one-line reason, not a traceback
        console.print(f"[red]push failed: {type(exc).__name__}: {escape(str(exc))}[/red]")
        raise typer.Exit(1) from None
    console.print(escape(plan.format()))
    if dry_run:
        console.print("dry run: nothing uploaded")
    elif plan.committed:
        console.print(f"[green]pushed to {repo_id}[/green]")
    else:
        console.print(f"{repo_id} is up to date")
