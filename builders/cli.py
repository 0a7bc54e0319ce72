"""The `cfqa` command line."""

import typer

app = typer.Typer(help="CFQA: Compressed Feature Quality Assessment benchmark.", no_args_is_help=True)


@app.callback()
def _root() -> None:
    """CFQA: build, import, score and publish the Compressed Feature Quality Assessment benchmark."""


def main() -> None:
    app()
