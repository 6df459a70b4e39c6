"""Where a scheduled run's PHR goes, and what it says.

Real sources record into the audit trail (`--history DIR`, else $AIOPS_HISTORY,
else `history/prompts` of the repository). Demo runs never touch the real trail:
unless `--history` names a store, they record into a demo store under the reports
directory (`<reports>/.schedule/history/prompts`, its own git repository,
initialised on first use), and `--history` pointing at the repository's own
`history/prompts` is refused.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from aiops.errors import ParameterError
from aiops.schedule.state import schedule_dir

SCHEDULER_ACTOR = {"name": "aiops scheduler", "email": "aiops-scheduler@localhost"}


def is_demo(source: str) -> bool:
    return source.strip() == "demo"


def _repo_trail() -> set[Path]:
    """The repository's real audit trail(s): next to the package, and around the cwd."""
    import aiops

    found = {(Path(aiops.__file__).resolve().parent.parent / "history" / "prompts")}
    try:
        import git

        repo = git.Repo(Path.cwd(), search_parent_directories=True)
        if repo.working_tree_dir:
            found.add(Path(repo.working_tree_dir).resolve() / "history" / "prompts")
    except Exception:  # not in a repository: nothing more to protect
        pass
    return found


def demo_store(reports_dir: str | Path) -> Path:
    """`<reports>/.schedule/history/prompts`, in a git repository of its own."""
    import git

    repo_dir = schedule_dir(reports_dir) / "history"
    if not (repo_dir / ".git").exists():
        repo_dir.mkdir(parents=True, exist_ok=True)
        git.Repo.init(repo_dir)
    return repo_dir / "prompts"


def history_root(source: str, reports_dir: str | Path, explicit: str | Path | None) -> Path | None:
    """The PHR store root for a run of `source` (None: PhrStore's own default)."""
    if explicit is not None:
        root = Path(explicit).expanduser()
        if is_demo(source) and root.resolve() in _repo_trail():
            raise ParameterError(
                f"--history {root} is the repository's audit trail; demo runs never "
                "write there", "leave --history out (a demo store under the reports "
                "directory is used) or point it at another store")
        return root
    if is_demo(source):
        return demo_store(reports_dir)
    env = os.environ.get("AIOPS_HISTORY")
    return Path(env) if env else None


def record_run(root: Path | None, *, name: str, ok: bool, title: str, body: str,
               data: dict[str, Any]) -> str:
    """Append the `report` PHR and return its id."""
    from aiops.approvals.phr import PhrStore
    from aiops.errors import UncommittedRecordError

    store = PhrStore(root)
    try:
        rec = store.record("report", actor=SCHEDULER_ACTOR, title=title, body=body,
                           data=data)
    except UncommittedRecordError as exc:  # written and chained; the next commit takes it
        rec = exc.record
    return rec.id  # type: ignore[union-attr]


__all__ = ["SCHEDULER_ACTOR", "demo_store", "history_root", "is_demo", "record_run"]
