"""The `aiops` command: one entry point, one subcommand per job.

Every command takes `--source` (demo | snapshot path | kube[:context]).
Errors from bad input print one line naming what is wrong and how to fix it,
exit 2, and show a traceback only with --debug.

Each command group lives in its own module (see `_GROUPS`); importing one
registers its commands on the shared `app` from `_common`.
"""

from __future__ import annotations

from importlib import import_module

from aiops.cli._common import _DEBUG, app, err
from aiops.errors import AiopsError

__all__ = ["app", "main"]

# Help order: the command groups as `aiops --help` lists them (typer keeps the
# order of registration, so this tuple is that order).
_GROUPS = ("diagnose", "recommend", "audit", "reports", "demo", "metrics", "phr", "rollout",
           "approvals", "notify", "runbooks", "schedule", "watch")
for _group in _GROUPS:
    import_module(f"aiops.cli.{_group}")


def main(argv: list[str] | None = None) -> int:
    """Entry point: turn AiopsError into one line and an exit code."""
    try:
        app(args=argv, prog_name="aiops")
    except AiopsError as exc:
        if _DEBUG["on"]:
            raise
        hint = f" (fix: {exc.hint})" if exc.hint else ""
        err.print(f"[red]error:[/] {exc.message}{hint}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    return 0
