"""Run report notebooks with papermill and publish them under `reports/<date>/`.

A report is one registry entry (`register_report`): a name, a parameterized
notebook under the notebooks directory, and default parameters. `run_report`
executes it in a Jupyter kernel of *this* Python environment, then publishes

    <out_dir>/<YYYY-MM-DD>/<name>.ipynb         the executed notebook
    <out_dir>/<YYYY-MM-DD>/<name>.html          the page, code hidden, offline
    <out_dir>/<YYYY-MM-DD>/<name>.summary.json  written by the notebook (optional)
    <out_dir>/index.html                        every run, newest first

Everything is written to temporary files first and renamed only when the run
succeeded, so a failing run never replaces the last good report; its executed
notebook, with the red error cell, is kept as `<name>.failed.ipynb`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from aiops.errors import AiopsError, ParameterError, ReportError

log = logging.getLogger(__name__)

NOTEBOOKS_ENV = "AIOPS_NOTEBOOKS"
WORKERS_ENV = "AIOPS_REPORT_WORKERS"
# Parameters the runner fills in itself; passed only when the notebook declares them.
RUNNER_PARAMETERS = ("reports_dir", "report_date", "summary_path", "previous_summary")


# -- registry -----------------------------------------------------------------

@dataclass(frozen=True)
class ReportSpec:
    """One report type: its notebook (relative to the notebooks dir) and defaults."""

    name: str
    notebook: str
    title: str
    description: str = ""
    defaults: Mapping[str, Any] = field(default_factory=dict)


REPORTS: dict[str, ReportSpec] = {}


def register_report(spec: ReportSpec) -> ReportSpec:
    """Add a report type; adding a report is one call of this plus its notebook."""
    if not re.fullmatch(r"[a-z][a-z0-9_-]*", spec.name):
        raise ValueError(f"report name {spec.name!r} must be lowercase [a-z0-9_-]")
    REPORTS[spec.name] = spec
    return spec


register_report(ReportSpec(
    name="health",
    notebook="reports/cluster_health.ipynb",
    title="Weekly cluster health",
    description="Popeye-style health score, problems found, capacity, restarts, warnings",
    defaults={"namespaces": "", "window": "7d"},
))
register_report(ReportSpec(
    name="utilization",
    notebook="reports/utilization.ipynb",
    title="Daily utilization",
    description="Usage vs requests, efficiency, back-tested right-sizing, HPA advice, leaks",
    defaults={"namespaces": "", "window": "14d"},
))
register_report(ReportSpec(
    name="cost",
    notebook="reports/cost.ipynb",
    title="Daily cost",
    description="Monthly cost by namespace, workload and team with idle, nodes, PVCs, savings",
    defaults={"namespaces": "", "window": "14d"},
))
register_report(ReportSpec(
    name="security",
    notebook="reports/security.ipynb",
    title="Weekly security posture",
    description="Posture score and trend, PSS levels, top risks by exposure, RBAC, network "
                "exposure, failing checks with fixes, exemptions",
    defaults={"namespaces": "", "window": "90d"},  # window: how far back the trend reaches
))

register_report(ReportSpec(
    name="operations",
    notebook="reports/operations.ipynb",
    title="Operations KPIs",
    description="MTTD, MTTR, approval latency vs SLA, PHR compliance, rollbacks, "
                "recommendation acceptance, config incidents, toil, savings, with trends",
    defaults={"window": "28d"},  # the PHR store: -p phr_store=DIR (--store is metrics)
))


def get_report(name: str) -> ReportSpec:
    try:
        return REPORTS[name]
    except KeyError:
        known = ", ".join(sorted(REPORTS)) or "none"
        raise ParameterError(f"unknown report {name!r}", f"known reports: {known}") from None


def notebooks_dir() -> Path:
    """`$AIOPS_NOTEBOOKS`, else `<repo>/notebooks` next to the (editable) package."""
    env = os.environ.get(NOTEBOOKS_ENV)
    if env:
        return Path(env).expanduser().resolve()
    import aiops

    return Path(aiops.__file__).resolve().parent.parent / "notebooks"


def notebook_path(spec: ReportSpec) -> Path:
    path = notebooks_dir() / spec.notebook
    if not path.is_file():
        raise ReportError(
            f"notebook for report {spec.name!r} not found: {path}",
            f"run from a source checkout (pip install -e .) or set {NOTEBOOKS_ENV} "
            "to the directory holding reports/*.ipynb")
    return path


# -- kernel -------------------------------------------------------------------

_kernel_name: str | None = None


def kernel_name_for(executable: str = sys.executable) -> str:
    digest = hashlib.sha1(executable.encode()).hexdigest()[:8]
    return f"aiops-py{sys.version_info.major}{sys.version_info.minor}-{digest}"


def ensure_kernel() -> str:
    """The name of a kernelspec that runs `sys.executable`, installing it if needed.

    A venv's notebooks must run in that venv, not in whatever `python3` kernel is
    registered globally, so the spec is named after this interpreter and written
    into `sys.prefix` (the venv) or, when that is read-only, the user data dir.
    """
    global _kernel_name
    if _kernel_name:
        return _kernel_name
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    name = kernel_name_for()
    ksm = KernelSpecManager()
    try:
        spec = ksm.get_kernel_spec(name)
        current = bool(spec.argv) and spec.argv[0] == sys.executable
    except NoSuchKernel:
        current = False
    if not current:
        from ipykernel.kernelspec import install

        display = f"Python {sys.version_info.major}.{sys.version_info.minor} (aiops, {sys.prefix})"
        try:
            install(kernel_name=name, display_name=display, prefix=sys.prefix)
        except OSError:
            install(kernel_name=name, display_name=display, user=True)
        spec = KernelSpecManager().get_kernel_spec(name)
        if not spec.argv or spec.argv[0] != sys.executable:
            raise ReportError(f"kernelspec {name!r} at {spec.resource_dir} runs "
                              f"{spec.argv[:1]}, not {sys.executable}",
                              "remove that kernelspec directory or pass --kernel")
    _kernel_name = name
    return name


# -- results and progress ----------------------------------------------------

@dataclass
class ReportProgress:
    """What a progress callback receives.

    stage: "start" (total = code cells to run), "cell" (done of total cells run),
    "render", "done" or "failed" (detail holds the error).
    """

    report: str
    stage: str
    done: int = 0
    total: int = 0
    detail: str = ""


ProgressCallback = Callable[[ReportProgress], None]


@dataclass
class ReportResult:
    name: str
    date: str
    ok: bool
    parameters: dict[str, Any]
    notebook: Path | None = None
    html: Path | None = None
    summary: Path | None = None
    failed_notebook: Path | None = None
    error: AiopsError | None = None
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    def __str__(self) -> str:
        if self.ok:
            return f"{self.name}: {self.html} ({self.seconds:.1f}s)"
        return f"{self.name}: FAILED: {self.error}"


def _emit(progress: ProgressCallback | None, event: ReportProgress) -> None:
    if progress is None:
        return
    try:
        progress(event)
    except Exception:  # a broken progress bar must not break a report
        log.exception("progress callback failed")


# -- parameters ---------------------------------------------------------------

def report_date(value: str | date | datetime | None = None) -> str:
    """The YYYY-MM-DD folder of a run: `value`, or today in UTC."""
    if value is None:
        return datetime.now(UTC).date().isoformat()
    if isinstance(value, datetime):
        value = (value.astimezone(UTC) if value.tzinfo else value).date()
    if isinstance(value, date):
        return value.isoformat()
    try:
        return date.fromisoformat(str(value).strip()).isoformat()
    except ValueError:
        raise ParameterError(f"invalid report date {value!r}",
                             "use the form YYYY-MM-DD") from None


def declared_parameters(nb_path: Path) -> dict[str, str]:
    """Names of the notebook's `parameters` cell, mapped to their default's source.

    Parsed with `ast` rather than papermill's line regex, which gives up on
    some commented lines (`x = ""  # ...`) and would make us drop parameters.
    """
    import ast

    import nbformat

    nb = nbformat.read(str(nb_path), as_version=4)
    cell = next((c for c in nb.cells if c.cell_type == "code"
                 and "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if cell is None:
        raise ReportError(f"notebook {nb_path} has no cell tagged 'parameters'",
                          "tag its first code cell `parameters` (papermill convention)")
    try:
        tree = ast.parse(cell.source)
    except SyntaxError as exc:
        raise ReportError(f"the parameters cell of {nb_path} is not valid Python: {exc}",
                          "fix that cell") from exc
    out: dict[str, str] = {}
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign) else []
        for t in targets:
            if isinstance(t, ast.Name):
                value = getattr(node, "value", None)
                out[t.id] = ast.get_source_segment(cell.source, value) if value else ""
    return out


def _normalise(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list | tuple | set | frozenset):
        return ",".join(str(v) for v in value)
    return value


def _source_spec(source: str) -> str:
    """A snapshot path made absolute (the kernel may not share our cwd)."""
    p = Path(source).expanduser()
    return str(p.resolve()) if source and p.exists() else source


def previous_summary_path(out_root: Path, name: str, day: str) -> Path | None:
    """The newest `<d>/<name>.summary.json` with d <= day (today's last good run counts)."""
    if not out_root.is_dir():
        return None
    found = sorted(p for p in out_root.glob(f"*/{name}.summary.json")
                   if re.fullmatch(r"\d{4}-\d{2}-\d{2}", p.parent.name) and p.parent.name <= day)
    return found[-1] if found else None


def build_parameters(spec: ReportSpec, declared: Mapping[str, Any], *, source: str,
                     parameters: Mapping[str, Any] | None, out_root: Path, day: str,
                     summary_tmp: Path) -> dict[str, Any]:
    user = {k: _normalise(v) for k, v in (parameters or {}).items()}
    unknown = sorted(set(user) - set(declared))
    if unknown:
        raise ParameterError(
            f"report {spec.name!r} has no parameter {', '.join(map(repr, unknown))}",
            f"its notebook declares: {', '.join(sorted(declared)) or 'none'}")
    params: dict[str, Any] = {"title": spec.title, **spec.defaults}
    params["source"] = _source_spec(source)
    auto: dict[str, Any] = {
        "reports_dir": str(out_root),
        "report_date": day,
        "summary_path": str(summary_tmp),
    }
    prev = previous_summary_path(out_root, spec.name, day)
    auto["previous_summary"] = str(prev) if prev else ""
    params.update(auto)
    params.update(user)
    return {k: v for k, v in params.items() if k in declared}


# -- running --------------------------------------------------------------------

def _failed_cell(nb_path: Path) -> tuple[int | None, str]:
    """(index, first source line) of the cell that failed or was running."""
    try:
        import nbformat

        nb = nbformat.read(str(nb_path), as_version=4)
    except Exception:
        return None, ""
    started = None
    for i, cell in enumerate(nb.cells):
        pm = cell.get("metadata", {}).get("papermill", {})
        if pm.get("exception") or pm.get("status") == "running":
            return i, _first_line(cell.get("source", ""))
        if pm.get("start_time"):
            started = i
    if started is None:
        return None, ""
    return started, _first_line(nb.cells[started].get("source", ""))


def _mark_error(nb_path: Path, index: int | None, ename: str, evalue: str) -> None:
    """Give a cell papermill could not mark (timeout, dead kernel) a red error output."""
    if index is None or not nb_path.exists():
        return
    try:
        import nbformat

        nb = nbformat.read(str(nb_path), as_version=4)
        cell = nb.cells[index]
        if cell.cell_type == "code":
            cell.outputs.append(nbformat.v4.new_output(
                "error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"]))
        cell.metadata.setdefault("papermill", {})["exception"] = True
        nb.metadata.setdefault("papermill", {})["exception"] = True
        nbformat.write(nb, str(nb_path))
    except Exception:  # best effort: the notebook is kept either way
        log.exception("could not mark the failed cell in %s", nb_path)


def _first_line(source: str) -> str:
    lines = [ln.strip() for ln in source.splitlines() if ln.strip() and
             not ln.strip().startswith("#")]
    return (lines[0][:100] if lines else "")


def _count_code_cells(nb_path: Path) -> int:
    import nbformat

    nb = nbformat.read(str(nb_path), as_version=4)
    return sum(1 for c in nb.cells if c.cell_type == "code" and c.source.strip())


def _write_notebook(nb: Any, path: Path) -> None:
    import nbformat

    nbformat.write(nb, str(path))


def _unique_tmp(directory: Path, stem: str, suffix: str) -> Path:
    return directory / f".{stem}.{uuid.uuid4().hex[:8]}.tmp{suffix}"


def run_report(
    name: str,
    *,
    source: str = "demo",
    out_dir: str | Path = Path("reports"),
    parameters: Mapping[str, Any] | None = None,
    timeout: float | None = 600,
    kernel: str | None = None,
    date: str | date | datetime | None = None,
    progress: ProgressCallback | None = None,
    start_timeout: float = 60,
) -> ReportResult:
    """Execute report `name` and publish it; raise ReportError when it fails.

    `timeout` is papermill's execution timeout, per cell, in seconds (None: no
    limit). `kernel` names a kernelspec; by default one for this interpreter is
    registered and used. `date` (YYYY-MM-DD) overrides today's UTC folder.
    """
    t0 = time.perf_counter()
    spec = get_report(name)
    day = report_date(date)
    nb_in = notebook_path(spec)
    out_root = Path(out_dir).expanduser().resolve()
    day_dir = out_root / day
    declared = declared_parameters(nb_in)
    summary_tmp = _unique_tmp(day_dir, f"{name}.summary", ".json")
    params = build_parameters(spec, declared, source=source, parameters=parameters,
                              out_root=out_root, day=day, summary_tmp=summary_tmp)
    day_dir.mkdir(parents=True, exist_ok=True)

    final_nb = day_dir / f"{name}.ipynb"
    final_html = day_dir / f"{name}.html"
    final_summary = day_dir / f"{name}.summary.json"
    failed_nb = day_dir / f"{name}.failed.ipynb"
    tmp_nb = _unique_tmp(day_dir, name, ".ipynb")
    tmp_html = _unique_tmp(day_dir, name, ".html")
    result = ReportResult(name=name, date=day, ok=False, parameters=params)

    total = _count_code_cells(nb_in) + 1  # + papermill's injected-parameters cell
    done = 0

    def on_cell(**_: Any) -> None:
        nonlocal done
        done += 1
        _emit(progress, ReportProgress(name, "cell", done, total))

    _emit(progress, ReportProgress(name, "start", 0, total, str(nb_in)))
    try:
        kernel_name = kernel or ensure_kernel()
        nb = _execute(spec, nb_in, tmp_nb, failed_nb, params, kernel_name, timeout,
                      start_timeout, on_cell)
        result.timings["execute"] = time.perf_counter() - t0
        # Which report, day and interpreter produced this (papermill records the
        # parameters but not the kernel; the kernelspec metadata stays portable).
        nb.metadata["aiops"] = {"report": name, "date": day, "kernel": kernel_name,
                                "python": sys.executable}
        _write_notebook(nb, tmp_nb)

        _emit(progress, ReportProgress(name, "render", done, total))
        t1 = time.perf_counter()
        from aiops.reports.html import write_html

        title = f"{params.get('title') or spec.title} · {day}"
        try:
            write_html(nb, tmp_html, title=title)
        except Exception as exc:
            raise ReportError(f"report {name!r} ran but could not be rendered to HTML: "
                              f"{type(exc).__name__}: {exc}",
                              f"the executed notebook is kept at {failed_nb}") from exc
        result.timings["render"] = time.perf_counter() - t1

        # Publish: only now replace the last good files.
        if summary_tmp.exists():
            os.replace(summary_tmp, final_summary)
            result.summary = final_summary
        os.replace(tmp_nb, final_nb)
        os.replace(tmp_html, final_html)
        failed_nb.unlink(missing_ok=True)
        result.notebook, result.html, result.ok = final_nb, final_html, True
    except ReportError as exc:
        if tmp_nb.exists():
            os.replace(tmp_nb, failed_nb)
        result.failed_notebook = failed_nb if failed_nb.exists() else None
        result.error = exc
        _emit(progress, ReportProgress(name, "failed", done, total, str(exc)))
        raise
    finally:
        for p in (tmp_nb, tmp_html, summary_tmp):
            p.unlink(missing_ok=True)
        result.seconds = time.perf_counter() - t0
        _refresh_index(out_root)
    _emit(progress, ReportProgress(name, "done", total, total, str(result.html)))
    return result


def _execute(spec: ReportSpec, nb_in: Path, tmp_nb: Path, failed_nb: Path,
             params: dict[str, Any], kernel_name: str, timeout: float | None,
             start_timeout: float, on_cell: Callable[..., None]) -> Any:
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    def hint() -> str:
        if tmp_nb.exists():
            return f"the executed notebook with the error is kept at {failed_nb}"
        return f"the notebook did not start; check {nb_in} and the kernel {kernel_name!r}"

    try:
        return pm.execute_notebook(
            str(nb_in), str(tmp_nb), parameters=params, kernel_name=kernel_name,
            language="python", progress_bar=False, log_output=False,
            start_timeout=start_timeout, execution_timeout=timeout,
            on_cell_executed=on_cell,
        )
    except PapermillExecutionError as exc:
        line = _first_line(exc.source or "")
        where = f"cell {exc.cell_index} (In [{exc.exec_count}]" + (f": {line})" if line else ")")
        evalue = (exc.evalue or "").strip().splitlines()
        raise ReportError(
            f"report {spec.name!r} failed in {where}: {exc.ename}: "
            f"{evalue[0] if evalue else ''}".rstrip(": "), hint()) from exc
    except Exception as exc:
        kind = type(exc).__name__
        if "Timeout" in kind or isinstance(exc, TimeoutError):
            idx, line = _failed_cell(tmp_nb)
            _mark_error(tmp_nb, idx, "CellTimeoutError",
                        f"the cell did not finish within {timeout} seconds")
            where = f" in cell {idx}" + (f" ({line})" if line else "") if idx is not None else ""
            raise ReportError(f"report {spec.name!r} timed out{where} after {timeout}s",
                              f"raise the timeout (--timeout); {hint()}") from exc
        if kind == "NoSuchKernel":
            raise ReportError(f"no Jupyter kernel named {kernel_name!r}",
                              "list kernels with `jupyter kernelspec list`") from exc
        idx, line = _failed_cell(tmp_nb)
        _mark_error(tmp_nb, idx, kind, str(exc))
        where = f" in cell {idx}" + (f" ({line})" if line else "") if idx is not None else ""
        raise ReportError(f"report {spec.name!r} could not be executed{where}: {kind}: {exc}",
                          hint()) from exc


def default_workers() -> int:
    """Reports run side by side, one kernel each; more kernels than cores only
    makes every report slower, so the bound is the core count (at most 4), unless
    `$AIOPS_REPORT_WORKERS` says otherwise."""
    env = os.environ.get(WORKERS_ENV, "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, min(4, os.cpu_count() or 1))


def run_reports(
    names: Iterable[str],
    *,
    source: str = "demo",
    out_dir: str | Path = Path("reports"),
    parameters: Mapping[str, Any] | None = None,
    timeout: float | None = 600,
    kernel: str | None = None,
    date: str | date | datetime | None = None,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
    runbooks: bool = True,
) -> list[ReportResult]:
    """Run several reports, `workers` at a time; a failure does not stop the rest.

    The reports are independent (each reads the cluster and writes only its own
    `<name>.*` files, through temporary files renamed at the end), so they run
    concurrently, each in its own kernel; results come back in the order of
    `names`. Unknown names are rejected before anything runs. Each result says
    whether it succeeded; failed ones carry their ReportError. `parameters` are
    given only to the reports whose notebook declares them. With `runbooks`, the
    runbooks are (re)written under `<out_dir>/runbooks/` so findings can link them.
    """
    names = list(dict.fromkeys(names))
    specs = [get_report(n) for n in names]
    day = report_date(date)
    declared: dict[str, set[str]] = {}
    if parameters:
        for spec in specs:
            try:
                declared[spec.name] = set(declared_parameters(notebook_path(spec)))
            except AiopsError:
                declared[spec.name] = set()  # reported when that report runs
        unused = sorted(set(parameters) - set().union(*declared.values()))
        if unused:
            raise ParameterError(
                f"no selected report takes parameter {', '.join(map(repr, unused))}",
                f"reports: {', '.join(names)}")
    if runbooks:
        write_runbooks(out_dir, (parameters or {}).get("phr_store"))
    if kernel is None and specs:
        try:
            kernel = ensure_kernel()  # once, before threads race to install it
        except AiopsError:
            pass  # each report then fails with this error itself

    def one(spec: ReportSpec) -> ReportResult:
        params = {k: v for k, v in (parameters or {}).items()
                  if k in declared.get(spec.name, ())}
        try:
            return run_report(spec.name, source=source, out_dir=out_dir, parameters=params,
                              timeout=timeout, kernel=kernel, date=day, progress=progress)
        except AiopsError as exc:
            return ReportResult(name=spec.name, date=day, ok=False, parameters=params,
                                error=exc, failed_notebook=_failed_path(out_dir, day, spec.name))

    n = max(1, min(workers or default_workers(), len(specs) or 1))
    if n == 1:
        return [one(spec) for spec in specs]
    from concurrent.futures import ThreadPoolExecutor

    # Threads suffice: the work happens in the kernels (separate processes) and in
    # nbconvert; each run_report has its own temp files and papermill client.
    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="aiops-report") as pool:
        results = list(pool.map(one, specs))
    _refresh_index(Path(out_dir).expanduser().resolve())  # once more, all runs published
    return results


_INDEX_LOCK = threading.Lock()


def _refresh_index(out_root: Path) -> None:
    """Rebuild reports/index.html. Serialised: reports finishing at the same time
    must not each write an index scanned before the other's files were published."""
    try:
        from aiops.reports.index import update_index

        with _INDEX_LOCK:
            update_index(out_root)
    except OSError as exc:
        log.warning("could not update %s/index.html: %s", out_root, exc)


def write_runbooks(out_dir: str | Path, phr_store: Any = None) -> list[Path]:
    """`<out_dir>/runbooks/*.md` from the rule catalog (with measured MTTR when
    `phr_store` is an audit trail), and their HTML pages for the report site.
    Best effort: a report run does not fail because its runbooks could not be written."""
    from aiops.reports.index import RUNBOOKS, render_runbooks

    root = Path(out_dir).expanduser().resolve()
    try:
        from aiops.runbooks import generate

        store = None
        if phr_store and Path(str(phr_store)).is_dir():
            from aiops.approvals.phr import PhrStore

            store = PhrStore(Path(str(phr_store)))
        paths = generate(root / RUNBOOKS, store=store)
        return [*paths, *render_runbooks(root)]
    except Exception as exc:
        log.warning("could not write the runbooks under %s: %s", root / RUNBOOKS, exc)
        return []


def _failed_path(out_dir: str | Path, day: str, name: str) -> Path | None:
    p = Path(out_dir).expanduser().resolve() / day / f"{name}.failed.ipynb"
    return p if p.exists() else None


__all__ = [
    "REPORTS", "ReportProgress", "ReportResult", "ReportSpec", "ensure_kernel", "get_report",
    "notebooks_dir", "register_report", "run_report", "run_reports", "write_runbooks",
]
