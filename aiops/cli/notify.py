"""`aiops notify test`: escalation through a webhook (Slack-compatible or JSON)."""

from __future__ import annotations

from typing import Annotated

import typer

from aiops.cli._common import _notifier, app, out

notify_app = typer.Typer(help="Escalation through a webhook (Slack-compatible or JSON).",
                         no_args_is_help=True)
app.add_typer(notify_app, name="notify")


@notify_app.command("test")
def notify_test(
    url: Annotated[str | None, typer.Option(
        "--url", help="Webhook URL (default: $AIOPS_WEBHOOK_URL).")] = None,
    fmt: Annotated[str | None, typer.Option(
        "--format", help="slack | json (default: $AIOPS_WEBHOOK_FORMAT, else slack)")] = None,
) -> None:
    """Send a sample critical finding to the webhook. Exit 0 delivered, 1 not."""
    from aiops.notify.escalate import build
    from aiops.notify.message import sample_finding

    notifier = _notifier(url, fmt)
    d = notifier.send(build(notifier, sample_finding(), source="aiops notify test"))
    out.print(f"delivered to {notifier.masked_url} ({notifier.format}): HTTP {d.status} "
              f"after {d.attempts} attempt{'s' if d.attempts != 1 else ''}", highlight=False)
