"""`aiops demo`: the bundled demo cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aiops.cli._common import app, err, out

demo_app = typer.Typer(help="The bundled demo cluster.", no_args_is_help=True)
app.add_typer(demo_app, name="demo")


@demo_app.command("generate")
def demo_generate(
    out_dir: Annotated[Path, typer.Option("--out", help="Target directory.")],
    seed: int = 42,
    scale: Annotated[int, typer.Option(help="Copies of the todo namespace.")] = 1,
    events_per_pod: Annotated[int | None, typer.Option(help="Extra events per pod.")] = None,
    history: Annotated[bool, typer.Option(help="Write usage history.")] = True,
) -> None:
    """Generate the demo cluster (or a scaled-up copy for benchmarks)."""
    from aiops.sources.demo.generator import generate

    with err.status(f"generating into {out_dir} ..."):
        counts = generate(out_dir, seed=seed, scale=scale, events_per_pod=events_per_pod,
                          history=history)
    out.print(counts)
