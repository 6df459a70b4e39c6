"""Container failure rules: OOM kills, crash loops, bad commands, failing probes,
evictions and failed init containers.

Each rule reads one pod's container statuses, the kubelet events about it and
the previous container's log, and names the cause a human can act on. The
specific causes (OOM, bad command, liveness kill) supersede the generic
`crash-loop`, which itself ranks after the causes other families read in logs.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from itertools import repeat
from typing import Any

from aiops.diagnose.actions import delete_pod, manual, pod_spec_of, set_container_fields
from aiops.diagnose.context import (
    EVICTED,
    FAILED,
    LOG_LINE_LIMIT,
    ContainerEntry,
    Context,
    earliest,
    event_evidence,
    event_first_seen,
    event_signal,
    log_evidence,
    masked,
    md,
    parse_time,
    status_evidence,
    waiting_signal,
)
from aiops.diagnose.finding import Action, Evidence, Finding, Remediation
from aiops.diagnose.registry import rule
from aiops.diagnose.rules._common import as_dict as _dict
from aiops.diagnose.rules._common import as_int as _int
from aiops.diagnose.rules._common import as_list as _list
from aiops.diagnose.rules._common import as_text as _text
from aiops.quantity import to_float

Obj = dict[str, Any]
FAMILY = "containers"
MI = 2**20
OOM_EVENT_WINDOW = timedelta(minutes=2)  # node OOMKilling vs container finishedAt
SCAN_LINE_CHARS = 2000  # a log line longer than this is only searched in its head
ROLLOUT_KINDS = ("Deployment", "StatefulSet", "DaemonSet")

DOCS_OOM = "https://kubernetes.io/docs/tasks/configure-pod-container/assign-memory-resource/"
DOCS_CRASH = ("https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/"
              "#container-restarts")
DOCS_COMMAND = ("https://kubernetes.io/docs/tasks/inject-data-application/"
                "define-command-argument-container/")
DOCS_PROBES = ("https://kubernetes.io/docs/tasks/configure-pod-container/"
               "configure-liveness-readiness-startup-probes/")
DOCS_EVICTED = "https://kubernetes.io/docs/concepts/scheduling-eviction/node-pressure-eviction/"
DOCS_INIT = "https://kubernetes.io/docs/tasks/debug/debug-application/debug-init-containers/"
UNHEALTHY = event_signal("Unhealthy")  # a probe failed on some container of the pod
CRASH_LOOP_BACK_OFF = waiting_signal("CrashLoopBackOff")


# -- small, never-raising accessors ------------------------------------------------


def _where(pod: Obj) -> tuple[str, str]:
    m = md(pod)
    return _text(m.get("namespace")), _text(m.get("name"))


def _clip(s: str, n: int = 200) -> str:
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 1] + "…"


def _count(e: Obj) -> int:
    series = _dict(e.get("series"))
    n = _int(e.get("count")) or _int(series.get("count")) or 1
    return max(n, 1)


def _spec_path(c: ContainerEntry) -> str:
    return f"spec.{'initContainers' if c.init else 'containers'}[{c.name}]"


# -- events about one container ------------------------------------------------------

def _container_events(ctx: Context, pod: Obj, c: ContainerEntry, reason: str) -> list[Obj]:
    """Events of `reason` about container `c`: by fieldPath, else by name in the message."""
    single = sum(1 for _ in ctx.containers(pod)) == 1
    out = []
    for e in ctx.events(pod, reason=reason):
        named = _event_container(e)
        if named == c.name or (named is None and (single or _mentions(e, c.name))):
            out.append(e)
    return out


def _event_container(e: Obj) -> str | None:
    """Container named by an event's fieldPath (`spec.containers{app}`), None if absent."""
    io = _dict(e.get("involvedObject") or e.get("regarding"))
    m = re.fullmatch(r"spec\.(?:initContainers|containers|ephemeralContainers)\{(.+)\}",
                     _text(io.get("fieldPath")))
    return m.group(1) if m else None


def _mentions(e: Obj, name: str) -> bool:
    msg = _text(e.get("message")) or _text(e.get("note"))
    return bool(name) and re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", msg) is not None


def _message(e: Obj) -> str:
    return _text(e.get("message")) or _text(e.get("note"))


# -- exit codes --------------------------------------------------------------------

_SIGNALS = {1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 6: "SIGABRT", 7: "SIGBUS",
            8: "SIGFPE", 9: "SIGKILL", 11: "SIGSEGV", 13: "SIGPIPE", 15: "SIGTERM"}
_EXIT_MEANING = {
    0: "exited 0: the main process finished although the pod expects it to keep running",
    1: "application error",
    2: "misuse of a shell builtin or invalid command-line arguments",
    126: "command found but not executable",
    127: "command not found",
    128: "the container runtime could not start the process",
    130: "interrupted (SIGINT)",
    134: "aborted (SIGABRT): a failed assertion or a runtime abort",
    137: "killed by SIGKILL: out of memory, or killed after its stop grace period",
    139: "segmentation fault (SIGSEGV): the process crashed on a bad memory access",
    143: "terminated by SIGTERM: something asked it to stop (liveness probe, drain, rollout)",
    255: "fatal error (exit status out of range)",
}


def exit_meaning(code: int | None) -> str:
    """What an exit code usually means, in words."""
    if code is None:
        return "unknown exit code"
    if code in _EXIT_MEANING:
        return _EXIT_MEANING[code]
    if 128 < code < 160:
        sig = code - 128
        return f"killed by signal {sig} ({_SIGNALS.get(sig, 'signal')})"
    return "application-defined error code"


# -- logs: the decisive lines -------------------------------------------------------

_PANIC = re.compile(r"^\s*(?:panic: |fatal error: |thread '[^']*' panicked at )")
_EXC = re.compile(
    r"^\s*(?:Caused by: |Exception in thread \"[^\"]*\" |Uncaught )?"
    r"(?:[A-Za-z_$][\w$]*\.)*[\w$]*(?:Error|Exception|Exit|Interrupt)(?::\s|:?\s*$)")
_TRACEBACK = re.compile(r"Traceback \(most recent call last\):")
_ERROR_LINE = re.compile(
    r"\b(?:FATAL|CRITICAL|ERROR|PANIC|SEVERE|EMERG)\b|\b(?:fatal|panic)\b:|^\s*Error:"
    r"|(?i:level=(?:error|fatal|panic|crit)\b|\"level\":\s*\"(?:error|fatal|panic|critical)\""
    r"|\[(?:error|fatal|crit|emerg|alert)\])|^[EF]\d{4} ")
# `_ERROR_LINE` split by alternative, each tried only where its literal part occurs:
# one regex of seven alternatives, none with a literal prefix, costs ~30 us per line
_ERROR_WORDS = ("FATAL", "CRITICAL", "ERROR", "PANIC", "SEVERE", "EMERG", "fatal", "panic")
_ERR_CASED = re.compile(r"\b(?:FATAL|CRITICAL|ERROR|PANIC|SEVERE|EMERG)\b|\b(?:fatal|panic)\b:")
_ERR_START = re.compile(r"\s*Error:|[EF]\d{4} ")  # `^...`: tried with .match
_ERR_BRACKET = re.compile(r"\[(?:error|fatal|crit|emerg|alert)\]", re.IGNORECASE)
_ERR_LEVEL = re.compile(r"level=(?:error|fatal|panic|crit)\b", re.IGNORECASE)
_ERR_JSON_LEVEL = re.compile(r"\"level\":\s*\"(?:error|fatal|panic|critical)\"", re.IGNORECASE)


def error_line(line: str) -> bool:
    """Whether `_ERROR_LINE` matches somewhere in `line` (the same answer, faster)."""
    for w in _ERROR_WORDS:
        if w in line:
            if _ERR_CASED.search(line):
                return True
            break
    if _ERR_START.match(line) or ("[" in line and _ERR_BRACKET.search(line)):
        return True
    # 'level' has no case variants beyond ASCII, so it occurs in the lower-cased line
    # wherever the case-insensitive pattern could match; where lower() keeps every
    # character in place, the two level= patterns are tried at those spots only
    low = line.lower()
    p = low.find("level")
    if p == -1:
        return False
    if len(low) != len(line):
        return _ERROR_LINE.search(line) is not None
    while p != -1:
        if _ERR_LEVEL.match(line, p) or (p and _ERR_JSON_LEVEL.match(line, p - 1)):
            return True
        p = low.find("level", p + 1)
    return False


@dataclass(frozen=True)
class LogQuote:
    """Lines worth quoting from one log and what they are."""

    lines: tuple[tuple[int, str], ...]  # (1-based line number, text)
    kind: str  # panic | exception | error | tail | ""
    previous: bool

    @property
    def decisive(self) -> str:
        """The one line that names the failure."""
        if not self.lines:
            return ""
        if self.kind == "exception":
            exc = [t for _, t in self.lines if _EXC.search(t[:SCAN_LINE_CHARS])]
            if exc:
                return exc[-1].strip()
        if self.kind == "panic":
            return self.lines[0][1].strip()
        return self.lines[-1][1].strip()


# What a line head matches, as bits (`line_marks`); `decisive_lines` picks by them.
PANIC, EXCEPTION, TRACEBACK, ERROR = 1, 2, 4, 8
# A line's marks only depend on its ASCII digits being digits, not which ones: no
# pattern above has a digit literal, and every class (\d, \w, \s, \b, [^']...)
# holds all ten or none; so lines differing in stamps, ids and addresses share one.
_DIGITS = bytes.maketrans(b"0123456789", b"0000000000")
MARKS_LIMIT = 1 << 14  # remembered line shapes per state (then the memo starts afresh)
MARKS_LINE_CHARS = 1024  # a longer head is classified afresh each time (memo size)
Marks = dict[bytes, int]


def line_marks(head: str) -> int:
    """The patterns one line head matches: PANIC | EXCEPTION | TRACEBACK | ERROR."""
    return ((PANIC if _PANIC.search(head) else 0) | (EXCEPTION if _EXC.search(head) else 0)
            | (TRACEBACK if _TRACEBACK.search(head) else 0)
            | (ERROR if error_line(head) else 0))


def _marks(lines: list[str], memo: Marks | None, joined: bytes | None = None) -> list[int]:
    """`line_marks` of each line's head, remembered in `memo` by the head's UTF-8
    bytes with every ASCII digit made 0 (see `_DIGITS`): a crash loop repeats one
    error, and the replicas of a workload log the same lines, stamped anew. A
    line's marks never depend on its neighbours. `joined` is `_log_key(lines)`: the
    keys of all lines in one go, when no line is longer than MARKS_LINE_CHARS."""
    if memo is None:
        return [line_marks(ln[:SCAN_LINE_CHARS]) for ln in lines]
    if not lines:
        return []
    if joined is None:
        joined = _log_key(lines)
    if joined is None or max(map(len, lines)) > MARKS_LINE_CHARS:
        return [_marks_of(ln[:SCAN_LINE_CHARS], memo) for ln in lines]
    keys = joined.split(b"\n")  # each line is its own head
    marks = list(map(memo.get, keys, repeat(-1)))
    if -1 in marks:  # shapes not seen yet
        for i, m in enumerate(marks):
            if m == -1:
                marks[i] = _marks_of(lines[i], memo, keys[i])
    return marks


def _log_key(lines: list[str]) -> bytes | None:
    """The lines joined by newlines, UTF-8 with every ASCII digit made 0: equal keys,
    equal marks line by line. None if a line holds a newline (the join would be
    ambiguous)."""
    joined = "\n".join(lines).encode("utf-8", "surrogatepass").translate(_DIGITS)
    return joined if joined.count(b"\n") == len(lines) - 1 else None


def _marks_of(head: str, memo: Marks, key: bytes | None = None) -> int:
    """`line_marks(head)` through `memo` (long heads are not remembered)."""
    if len(head) > MARKS_LINE_CHARS:
        return line_marks(head)
    if key is None:
        key = head.encode("utf-8", "surrogatepass").translate(_DIGITS)
    m = memo.get(key)
    if m is None:
        if len(memo) >= MARKS_LIMIT:
            memo.clear()
        m = memo[key] = line_marks(head)
    return m


def decisive_lines(lines: list[str], memo: Marks | None = None) -> tuple[list[int], str]:
    """Indexes of the lines that explain a crash: the last panic, else the last
    exception (with its traceback header and a final error line after it), else
    the last error/fatal line. `memo` (per state) remembers each line's marks."""
    return decisive_lines_keyed(lines, memo, None)


def decisive_lines_keyed(lines: list[str], memo: Marks | None,
                         joined: bytes | None) -> tuple[list[int], str]:
    """`decisive_lines`, given `_log_key(lines)` if already made."""
    marks = _marks(lines, memo, joined)
    present = 0  # the bits some line has: a pattern no line matches is not looked for
    for m in set(marks):
        present |= m
    if not present:
        return [], ""
    if present & PANIC:
        return [_last_marked(marks, PANIC, len(marks))], "panic"
    if present & EXCEPTION:
        exc = _last_marked(marks, EXCEPTION, len(marks))
        picked = [exc]
        tb = _last_marked(marks, TRACEBACK, exc) if present & TRACEBACK else -1
        if tb >= 0:
            picked.insert(0, tb)
        after = _last_marked(marks, ERROR, len(marks)) if present & ERROR else -1
        if after > exc:
            picked.append(after)
        return picked, "exception"
    if present & ERROR:
        return [_last_marked(marks, ERROR, len(marks))], "error"
    return [], ""


def _last_marked(marks: list[int], bit: int, end: int) -> int:
    """Index of the last of `marks[:end]` with `bit` set, -1 if none."""
    for i in range(end - 1, -1, -1):
        if marks[i] & bit:
            return i
    return -1


def _last(lines: list[str], pat: re.Pattern[str] | Callable[[str], bool]) -> int | None:
    """Index of the last line the pattern (or predicate) matches."""
    test = pat.search if isinstance(pat, re.Pattern) else pat
    for i in range(len(lines) - 1, -1, -1):
        if test(lines[i]):
            return i
    return None


def log_base(ctx: Context, ns: str, pod: str, container: str, previous: bool) -> int:
    """Line number of the first line `ctx.log_lines` returns.

    Counted with `splitlines()` like `log_lines` itself; `ctx.log_offset` counts
    '\\n' + 1 and is one too high for a huge log that ends with a newline.
    """
    lines = ctx.log_lines(ns, pod, container, previous=previous)
    if len(lines) < LOG_LINE_LIMIT:
        return 1
    src = ctx.state.previous_logs if previous else ctx.state.logs
    text = src.get((ns, pod, container))
    return len(text.splitlines()) - len(lines) + 1 if isinstance(text, str) else 1


def quote_log(ctx: Context, pod: Obj, container: str, *, prefer_previous: bool = True,
              tail: int = 0) -> LogQuote:
    """The decisive lines of a container's log (previous run first); with `tail`,
    fall back to its last non-empty lines when nothing decisive is found.

    Kept on the state: several rules quote the same container, and a later
    diagnosis of the same state reads the same logs."""
    ns, name = _where(pod)
    table: dict[tuple[str, str, str, bool, int], LogQuote] = ctx.shared(
        ("containers", "quotes"), dict)
    key = (ns, name, container, prefer_previous, tail)
    found = table.get(key)
    if found is None:
        found = table[key] = _quote_log(ctx, ns, name, container, prefer_previous, tail)
    return found


def _quote_log(ctx: Context, ns: str, name: str, container: str, prefer_previous: bool,
               tail: int) -> LogQuote:
    order = (True, False) if prefer_previous else (False, True)
    fallback: LogQuote | None = None
    memo: Marks = ctx.shared(("containers", "line-marks"), dict)  # by line shape
    for previous in order:
        lines = ctx.log_lines(ns, name, container, previous=previous)
        if not lines:
            continue
        base = log_base(ctx, ns, name, container, previous)
        idx, kind = _decisive(ctx, (ns, name, container, previous), lines, memo)
        if idx:
            return LogQuote(tuple((base + i, lines[i]) for i in idx), kind, previous)
        if fallback is None and tail:
            keep = [i for i, ln in enumerate(lines) if ln.strip()][-tail:]
            fallback = LogQuote(tuple((base + i, lines[i]) for i in keep), "tail", previous)
    return fallback or LogQuote((), "", prefer_previous)


class _LogShapes:
    """`decisive_lines` by `_log_key`: the replicas of a workload, and one container
    run after run, log the same lines stamped anew. Kept per state, up to
    SHAPES_BYTES of keys (then it starts afresh)."""

    def __init__(self) -> None:
        self.found: dict[bytes, tuple[list[int], str]] = {}
        self.size = 0  # bytes of the keys kept
        self.by_log: dict[tuple[str, str, str, bool], tuple[list[int], str]] = {}


SHAPES_BYTES = 32 << 20


def _decisive(ctx: Context, log: tuple[str, str, str, bool], lines: list[str],
              memo: Marks) -> tuple[list[int], str]:
    """`decisive_lines(lines, memo)` of the log `log` (namespace, pod, container,
    previous), once per log and state, and once per log shape."""
    shapes: _LogShapes = ctx.shared(("containers", "log-shapes"), _LogShapes)
    hit = shapes.by_log.get(log)
    if hit is not None:
        return hit
    key = _log_key(lines)
    hit = shapes.found.get(key) if key is not None else None
    if hit is None:
        hit = decisive_lines_keyed(lines, memo, key)
        if key is not None:
            if shapes.size + len(key) > SHAPES_BYTES:
                shapes.found.clear()
                shapes.size = 0
            shapes.found[key] = hit
            shapes.size += len(key)
    shapes.by_log[log] = hit
    return hit


def _log_ev(container: str, q: LogQuote) -> list[Evidence]:
    return [log_evidence(container, n, masked(t), q.previous) for n, t in q.lines]


# -- remediation helpers ------------------------------------------------------------

def _owner_ref(ctx: Context, pod: Obj) -> tuple[Obj | None, str]:
    """The top workload object (None for a bare pod) and `kind/name` for kubectl."""
    owner = ctx.owner_object(pod)
    kind, name = ctx.owner(pod)
    return owner, f"{kind.lower()}/{name}"


def _validate(owner: Obj, extra: list[str]) -> list[str]:
    kind = _text(owner.get("kind"))
    m = md(owner)
    if kind in ROLLOUT_KINDS:
        head = [f"kubectl rollout status {kind.lower()}/{_text(m.get('name'))} -n "
                f"{_text(m.get('namespace'))} --timeout=300s succeeds"]
    else:
        head = [f"the next {kind or 'pod'} run starts its pods without this failure"]
    return head + extra


def _read_cmds(ns: str, pod: str, container: str, *, previous: bool = True) -> list[str]:
    logs = f"kubectl logs {pod} -n {ns} -c {container}" + (" --previous" if previous else "")
    return [f"kubectl describe pod {pod} -n {ns}", logs,
            f"kubectl get events -n {ns} --field-selector involvedObject.name={pod} "
            "--sort-by=.lastTimestamp"]


def _backoff_events(ctx: Context, pod: Obj, c: ContainerEntry) -> list[Obj]:
    return [e for e in _container_events(ctx, pod, c, "BackOff")
            if "restarting failed container" in _message(e).lower()]


def _term_evidence(c: ContainerEntry, term: Obj, where: str) -> list[Evidence]:
    """Quote a terminated state: reason, exit code with its meaning, message, times."""
    base = f"{c.path}.{where}"
    finished = parse_time(term.get("finishedAt"))
    out = []
    if _text(term.get("reason")):
        out.append(status_evidence(f"{base}.reason", term["reason"], finished))
    code = _int(term.get("exitCode"))
    if code is not None:
        out.append(Evidence("status", f"exitCode: {code} ({exit_meaning(code)})",
                            f"{base}.exitCode", finished))
    msg = _text(term.get("message")).strip()
    if msg:
        out.append(status_evidence(f"{base}.message", _clip(masked(msg), 500), finished))
    return out


# =============================================================================
# oom-killed
# =============================================================================

def parse_bytes(value: Any) -> float | None:
    """A memory quantity in bytes, None when missing or malformed."""
    f = to_float(value)
    return None if math.isnan(f) or f <= 0 else f


def grow_memory(limit_bytes: float, factor: float = 1.5) -> str:
    """`limit x factor`, rounded up to a whole Mi."""
    return f"{max(math.ceil(limit_bytes * factor / MI), 1)}Mi"


def _oom_termination(ctx: Context, pod: Obj, c: ContainerEntry) -> tuple[Obj, str,
                                                                          list[Obj]] | None:
    """The OOM termination of `c` (current state first) and matching node events."""
    for term, where in ((c.terminated, "state.terminated"),
                        (c.last_terminated, "lastState.terminated")):
        if term.get("reason") == "OOMKilled":
            return term, where, _node_oom_events(ctx, pod, term)
    for term, where in ((c.terminated, "state.terminated"),
                        (c.last_terminated, "lastState.terminated")):
        if _int(term.get("exitCode")) == 137:
            node_evs = _node_oom_events(ctx, pod, term)
            if node_evs:
                return term, where, node_evs
    return None


def _node_oom_events(ctx: Context, pod: Obj, term: Obj) -> list[Obj]:
    """Node `OOMKilling` events (node-problem-detector) close to the container's end."""
    node = _text(_dict(pod.get("spec")).get("nodeName"))
    finished = parse_time(term.get("finishedAt"))
    if not node or finished is None:
        return []
    out = []
    for e in ctx.events({"kind": "Node", "metadata": {"name": node}}, reason="OOMKilling"):
        first = parse_time(e.get("firstTimestamp") or e.get("eventTime"))
        last = parse_time(e.get("lastTimestamp")) or first
        if first is None or last is None:
            continue
        if first - OOM_EVENT_WINDOW <= finished <= last + OOM_EVENT_WINDOW:
            out.append(e)
    return out


@rule("oom-killed", family=FAMILY, title="Container killed for exceeding its memory",
      severity="critical", docs=DOCS_OOM, rank=20,
      supersedes=("crash-loop", "init-container-failed"))
def oom_killed(ctx: Context) -> Iterable[Finding]:
    """A container the kernel OOM-killed: the fix is memory, not the application log."""
    for pod in ctx.pods_with(FAILED):
        for c in ctx.containers(pod):
            hit = _oom_termination(ctx, pod, c)
            if hit is not None:
                yield _oom_finding(ctx, pod, c, *hit)


def _oom_finding(ctx: Context, pod: Obj, c: ContainerEntry, term: Obj, where: str,
                 node_evs: list[Obj]) -> Finding:
    ns, name = _where(pod)
    resources = _dict(c.spec.get("resources"))
    limit = _dict(resources.get("limits")).get("memory")
    request = _dict(resources.get("requests")).get("memory")
    backoff = _backoff_events(ctx, pod, c)
    finished = parse_time(term.get("finishedAt"))
    ev = _term_evidence(c, term, where)
    ev.append(status_evidence(f"{c.path}.restartCount", c.restarts))
    spec = _spec_path(c)
    ev.append(Evidence("spec", f"limits.memory: {limit if limit else '(none)'}",
                       f"{spec}.resources.limits.memory"))
    if request:
        ev.append(Evidence("spec", f"requests.memory: {request}",
                           f"{spec}.resources.requests.memory"))
    ev += [event_evidence(e) for e in node_evs[-2:]] + [event_evidence(e) for e in backoff[-1:]]
    ev += _log_ev(c.name, quote_log(ctx, pod, c.name, tail=2))

    kind = "init container" if c.init else "container"
    if limit:
        summary = (f"The {kind} '{c.name}' of pod {ns}/{name} was OOMKilled: it needs more "
                   f"than its {limit} memory limit; raise the limit or cut its memory use.")
    else:
        summary = (f"The {kind} '{c.name}' of pod {ns}/{name} was OOMKilled with no memory "
                   "limit: the node ran out of memory; set a memory request and limit.")
    crashing = c.waiting.get("reason") == "CrashLoopBackOff" or c.restarts >= 3 \
        or where == "state.terminated"
    return ctx.finding(
        "oom-killed", pod, summary, ev, _oom_remediation(ctx, pod, c, limit, request),
        confidence=0.97 if term.get("reason") == "OOMKilled" else 0.85,
        first_seen=earliest(event_first_seen(node_evs + backoff), finished),
        severity="critical" if crashing else "warning")


def _oom_remediation(ctx: Context, pod: Obj, c: ContainerEntry, limit: Any,
                     request: Any) -> Remediation:
    ns, name = _where(pod)
    owner, ref = _owner_ref(ctx, pod)
    cmds = [f"kubectl describe pod {name} -n {ns}",
            f"kubectl logs {name} -n {ns} -c {c.name} --previous",
            f"kubectl top pod {name} -n {ns} --containers"]
    cur = _template_memory(owner, c.name) if owner else (limit, request)
    limit_b, request_b = parse_bytes(cur[0]), parse_bytes(cur[1])
    if limit_b is None:
        return Remediation(
            "Measure the container's peak memory (kubectl top, metrics history), then set "
            "resources.requests.memory and resources.limits.memory above that peak.",
            tuple(cmds), manual(owner or pod, f"Set a memory request and limit on container "
                                f"'{c.name}' sized from its peak usage"))
    new = grow_memory(limit_b)
    raise_request = request_b is not None and abs(request_b - limit_b) < 1
    flags = f"--limits=memory={new}" + (f" --requests=memory={new}" if raise_request else "")
    if owner is None:
        return Remediation(
            f"Recreate the pod with a memory limit of {new} (about 1.5x {cur[0]}), or find "
            "what makes it use so much memory.", tuple(cmds),
            manual(pod, f"Recreate pod {name} with memory limit {new} on '{c.name}'"))
    cmds.append(f"kubectl set resources {ref} -n {ns} -c {c.name} {flags}")
    changes: dict[tuple[str, ...], Any] = {("resources", "limits", "memory"): new}
    if raise_request:
        changes[("resources", "requests", "memory")] = new
    what = "limit and request" if raise_request else "limit"
    desc = f"Raise the memory {what} of '{c.name}' in {ref} from {cur[0]} to {new}"
    action = set_container_fields(
        owner, c.name, changes, description=desc, tier="medium",
        validate=_validate(owner, [f"'{c.name}' is not OOMKilled again and its restartCount "
                                   "stops increasing for 30 minutes",
                                   f"its memory working set stays below 80% of {new}"]))
    return Remediation(
        f"{desc} (1.5x, rounded up to Mi); if usage keeps growing, look for a leak or an "
        "unbounded cache instead of raising it again.", tuple(cmds),
        action or manual(owner, desc))


def _template_memory(owner: Obj, container: str) -> tuple[Any, Any]:
    """(limit, request) of a container in a workload's pod template."""
    spec = pod_spec_of(owner)
    for section in ("containers", "initContainers"):
        for c in _list(spec.get(section)):
            if isinstance(c, dict) and c.get("name") == container:
                res = _dict(c.get("resources"))
                return (_dict(res.get("limits")).get("memory"),
                        _dict(res.get("requests")).get("memory"))
    return None, None


# =============================================================================
# crash-loop
# =============================================================================

def _is_sidecar(c: ContainerEntry) -> bool:
    return c.init and c.spec.get("restartPolicy") == "Always"


def _crash_looping(c: ContainerEntry) -> bool:
    if c.waiting.get("reason") == "CrashLoopBackOff":
        return True
    code = _int(c.last_terminated.get("exitCode"))
    return c.restarts >= 3 and code not in (None, 0)


@rule("crash-loop", family=FAMILY, title="Container keeps crashing (CrashLoopBackOff)",
      severity="critical", docs=DOCS_CRASH, rank=80)
def crash_loop(ctx: Context) -> Iterable[Finding]:
    """The generic restart loop, explained by exit code, termination message and the
    decisive line of the previous log; specific rules supersede it."""
    for pod in ctx.pods_with(CRASH_LOOP_BACK_OFF, FAILED):
        for c in ctx.containers(pod):
            if (not c.init or _is_sidecar(c)) and _crash_looping(c):
                yield _crash_finding(ctx, pod, c)


def _crash_finding(ctx: Context, pod: Obj, c: ContainerEntry) -> Finding:
    ns, name = _where(pod)
    term, where = ((c.last_terminated, "lastState.terminated") if c.last_terminated
                   else (c.terminated, "state.terminated"))
    code = _int(term.get("exitCode"))
    backoff = _backoff_events(ctx, pod, c)
    q = quote_log(ctx, pod, c.name, tail=3)
    looping = c.waiting.get("reason") == "CrashLoopBackOff"
    ev = []
    if looping:
        ev.append(status_evidence(f"{c.path}.state.waiting.reason", "CrashLoopBackOff"))
        if _text(c.waiting.get("message")):
            ev.append(status_evidence(f"{c.path}.state.waiting.message",
                                      _clip(c.waiting["message"], 300)))
    ev.append(status_evidence(f"{c.path}.restartCount", c.restarts))
    ev += _term_evidence(c, term, where) + _log_ev(c.name, q)
    ev += [event_evidence(e) for e in backoff[-1:]]

    cause = f"it exits {code} ({exit_meaning(code)})" if code is not None \
        else "it keeps exiting"
    detail = q.decisive if q.kind in ("panic", "exception", "error") else ""
    term_msg = _text(term.get("message")).strip()
    if not detail and term_msg:
        detail = masked(term_msg.splitlines()[-1])
    summary = (f"Container '{c.name}' of pod {ns}/{name} is crash-looping "
               f"({c.restarts} restarts): {cause}"
               + (f"; last error: {_clip(masked(detail)).rstrip('.')}" if detail else "")
               + ".")
    return ctx.finding(
        "crash-loop", pod, summary, ev, _crash_remediation(pod, c, code, detail),
        confidence=(0.9 if detail else 0.75) if looping else 0.7,
        first_seen=earliest(event_first_seen(backoff), parse_time(term.get("finishedAt"))),
        severity="critical" if looping else "warning")


def _crash_remediation(pod: Obj, c: ContainerEntry, code: int | None,
                       detail: str) -> Remediation:
    ns, name = _where(pod)
    if code == 0:
        words = ("The main process exits successfully but the pod restarts it: run a "
                 "long-running command, or use a Job for one-off work.")
    elif code in (137, 143):
        words = ("Something stops the container: check the events for liveness-probe kills, "
                 "evictions or OOM, and the previous log for what it was doing.")
    elif code in (139, 134):
        words = ("The process crashes natively: check the image/library versions and the "
                 "previous log; reproduce locally with the same image.")
    else:
        words = ("Read the previous container's log for the error"
                 + (f" ('{_clip(masked(detail), 120)}')" if detail else "")
                 + ", fix its cause (configuration, a dependency it cannot reach, a code "
                 "bug), and the kubelet restarts it on its own.")
    return Remediation(words, tuple(_read_cmds(ns, name, c.name)))


# =============================================================================
# bad-command
# =============================================================================

_EXEC_FAIL = re.compile(
    r"executable file not found in \$PATH|no such file or directory|permission denied"
    r"|exec format error", re.IGNORECASE)
_EXEC_CONTEXT = re.compile(r"\bexec\b|container process|starting container|OCI runtime"
                           r"|executable", re.IGNORECASE)
_SHELL_NOT_FOUND = re.compile(
    r"(?:^|\s)(?:/\S*/)?(?:ba|da|a|z)?sh: (?:\d+: |line \d+: )?([^:]+): "
    r"(?:command )?not found", re.IGNORECASE)
_EXE_PATTERNS = (
    re.compile(r'exec: \\*"([^"\\]+)\\*"'),
    re.compile(r"exec (\S+?): (?:no such file|permission denied|exec format error)",
               re.IGNORECASE),
    _SHELL_NOT_FOUND,
    re.compile(r"stat (\S+?): no such file or directory", re.IGNORECASE),
)
_START_REASONS = {"RunContainerError", "CreateContainerError", "StartError",
                  "ContainerCannotRun"}
_START_WAITING = tuple(waiting_signal(r) for r in sorted(_START_REASONS))


def _is_exec_failure(msg: str) -> bool:
    return bool(_EXEC_FAIL.search(msg) and _EXEC_CONTEXT.search(msg))


def executable_in(msg: str) -> str:
    """The command the runtime failed to exec, as named in an error message."""
    for pat in _EXE_PATTERNS:
        m = pat.search(msg)
        if m:
            return m.group(1).strip()
    return ""


def _exec_problem(c: ContainerEntry) -> tuple[Obj, str, int | None] | None:
    """The state that shows the command could not run: (state, where, exitCode)."""
    if _text(c.waiting.get("reason")) in _START_REASONS and \
            _is_exec_failure(_text(c.waiting.get("message"))):
        return c.waiting, "state.waiting", None
    for term, where in ((c.terminated, "state.terminated"),
                        (c.last_terminated, "lastState.terminated")):
        code = _int(term.get("exitCode"))
        if code in (126, 127) or (_text(term.get("reason")) in _START_REASONS
                                  and _is_exec_failure(_text(term.get("message")))):
            return term, where, code
    return None


def _explain_exec(text: str, code: int | None) -> str:
    low = text.lower()
    if "exec format error" in low:
        return "the binary is built for another CPU architecture (exec format error)"
    if "permission denied" in low or code == 126:
        return "the file exists but is not executable (permission denied)"
    if "not found in $path" in low or "not found" in low or code == 127:
        return "the executable is not in the image (not found in $PATH)"
    return "the file does not exist in the image (no such file or directory)"


@rule("bad-command", family=FAMILY, title="Container command cannot be executed",
      severity="critical", docs=DOCS_COMMAND, rank=15,
      supersedes=("crash-loop", "init-container-failed"))
def bad_command(ctx: Context) -> Iterable[Finding]:
    """Exit 126/127 or a runtime exec error: the command/args or the image is wrong."""
    for pod in ctx.pods_with(*_START_WAITING, FAILED):
        for c in ctx.containers(pod):
            hit = _exec_problem(c)
            if hit is not None:
                yield _bad_command_finding(ctx, pod, c, *hit)


def _bad_command_finding(ctx: Context, pod: Obj, c: ContainerEntry, state: Obj, where: str,
                         code: int | None) -> Finding:
    ns, name = _where(pod)
    failed = [e for e in _container_events(ctx, pod, c, "Failed")
              if _is_exec_failure(_message(e))]
    ev: list[Evidence] = []
    if where == "state.waiting":
        ev.append(status_evidence(f"{c.path}.state.waiting.reason", state.get("reason")))
        ev.append(status_evidence(f"{c.path}.state.waiting.message",
                                  _clip(_text(state.get("message")), 500)))
    else:
        ev += _term_evidence(c, state, where)
    texts = [_text(state.get("message"))] + [_message(e) for e in failed]
    q = LogQuote((), "", True)
    if code in (126, 127):
        q = _shell_error_lines(ctx, pod, c)
        texts += [t for _, t in q.lines]
    ev += _log_ev(c.name, q) + [event_evidence(e) for e in failed[-1:]]
    ev += _command_evidence(c)
    exe = next((x for x in (executable_in(t) for t in texts) if x), "")
    why = _explain_exec(" ".join(texts), code)
    kind = "init container" if c.init else "container"
    summary = (f"The {kind} '{c.name}' of pod {ns}/{name} cannot start its command"
               + (f" '{exe}'" if exe else "") + f": {why}; fix command/args or the image.")
    return ctx.finding(
        "bad-command", pod, summary, ev, _bad_command_remediation(ctx, pod, c, exe),
        confidence=0.95 if exe or where != "lastState.terminated" else 0.85,
        first_seen=earliest(event_first_seen(failed + _backoff_events(ctx, pod, c)),
                            parse_time(state.get("finishedAt")))
        or parse_time(_dict(pod.get("status")).get("startTime")))


def _shell_error_lines(ctx: Context, pod: Obj, c: ContainerEntry) -> LogQuote:
    """The last 'not found' / 'No such file' line a shell printed before exiting 126/127."""
    ns, name = _where(pod)
    pat = re.compile(r"not found|no such file or directory|permission denied"
                     r"|exec format error", re.IGNORECASE)
    for previous in (True, False):
        lines = ctx.log_lines(ns, name, c.name, previous=previous)
        i = _last([ln[:SCAN_LINE_CHARS] for ln in lines], pat)
        if i is not None:
            return LogQuote(((log_base(ctx, ns, name, c.name, previous) + i, lines[i]),),
                            "error", previous)
    return LogQuote((), "", True)


def _command_evidence(c: ContainerEntry) -> list[Evidence]:
    spec = _spec_path(c)
    out = []
    for key in ("command", "args"):
        val = c.spec.get(key)
        if isinstance(val, list) and val:
            out.append(Evidence("spec", f"{key}: {_clip(json.dumps(val), 300)}",
                                f"{spec}.{key}"))
    if not out:
        out.append(Evidence("spec", "command: (not set: the image ENTRYPOINT/CMD runs)",
                            f"{spec}.command"))
    image = _text(c.spec.get("image"))
    if image:
        out.append(Evidence("spec", f"image: {image}", f"{spec}.image"))
    return out


def _bad_command_remediation(ctx: Context, pod: Obj, c: ContainerEntry,
                             exe: str) -> Remediation:
    ns, name = _where(pod)
    owner, ref = _owner_ref(ctx, pod)
    section = "initContainers" if c.init else "containers"
    sel = f'.spec.{section}[?(@.name=="{c.name}")]'
    cmds = [f"kubectl describe pod {name} -n {ns}",
            f"kubectl get pod {name} -n {ns} -o jsonpath='{{{sel}.command}} {{{sel}.args}}'"]
    image = _text(c.spec.get("image"))
    if image and exe:
        cmds.append(f"kubectl run cmd-check -n {ns} --rm -it --restart=Never --image={image} "
                    f"--command -- sh -c 'command -v {exe}; ls -l {exe}'")
    if owner is not None:
        cmds.append(f"kubectl edit {ref} -n {ns}")
    desc = (f"Correct the command/args of '{c.name}'" + (f" (it runs '{exe}')" if exe else "")
            + " to an executable that exists in the image, or fix the image")
    return Remediation(desc + ".", tuple(cmds), manual(owner or pod, desc))


# =============================================================================
# probes
# =============================================================================

def probe_text(probe: Obj) -> str:
    """A probe as one line: handler, target and timing (what to quote)."""
    if not probe:
        return "(no probe defined)"
    http, tcp = _dict(probe.get("httpGet")), _dict(probe.get("tcpSocket"))
    grpc, exe = _dict(probe.get("grpc")), _dict(probe.get("exec"))
    if http:
        head = (f"httpGet {_text(http.get('scheme')) or 'HTTP'} port {http.get('port')} "
                f"path {_text(http.get('path')) or '/'}")
    elif tcp:
        head = f"tcpSocket port {tcp.get('port')}"
    elif grpc:
        head = f"grpc port {grpc.get('port')}"
    elif exe:
        head = f"exec {_clip(json.dumps(_list(exe.get('command'))), 120)}"
    else:
        head = "unknown handler"
    timing = [f"{k}={probe[k]}" for k in ("initialDelaySeconds", "periodSeconds",
                                          "timeoutSeconds", "failureThreshold")
              if _int(probe.get(k)) is not None]
    return head + (f" ({', '.join(timing)})" if timing else "")


def probe_cause(messages: list[str]) -> str:
    """Why a probe fails, from the kubelet's Unhealthy messages."""
    text = " ".join(messages).lower()
    m = re.search(r"statuscode: (\d{3})", text)
    if m:
        code = int(m.group(1))
        if code == 404:
            return "the probe path returns HTTP 404 (wrong path?)"
        return f"the endpoint answers HTTP {code}"
    if "connection refused" in text:
        return "nothing listens on the probe port (connection refused)"
    if any(s in text for s in ("deadline exceeded", "client.timeout", "timeout", "timed out")):
        return "the endpoint answers slower than timeoutSeconds"
    if "no route to host" in text or "connection reset" in text:
        return "the probe cannot reach the container"
    return "the probe check fails"


def _probe_port_fix(ctx: Context, pod: Obj, c: ContainerEntry, field: str,
                    messages: list[str]) -> Action | None:
    """The one clearly fixable probe: its numeric port is refused and the container
    declares exactly one, different, TCP port."""
    probe = _dict(c.spec.get(field))
    handler = "httpGet" if probe.get("httpGet") else "tcpSocket" if probe.get("tcpSocket") \
        else ""
    port = _int(_dict(probe.get(handler)).get("port")) if handler else None
    declared = [_int(_dict(p).get("containerPort")) for p in _list(c.spec.get("ports"))
                if _text(_dict(p).get("protocol")) in ("", "TCP")]
    owner = ctx.owner_object(pod)
    if (port is None or owner is None or len(declared) != 1 or declared[0] is None
            or declared[0] == port
            or not any("connection refused" in m.lower() for m in messages)):
        return None
    kind, name = ctx.owner(pod)
    desc = (f"Point the {field} of '{c.name}' in {kind}/{name} at the declared "
            f"containerPort {declared[0]} instead of {port}")
    return set_container_fields(owner, c.name, {(field, handler, "port"): declared[0]},
                                description=desc, tier="medium",
                                validate=_validate(owner, [f"no new Unhealthy '{field}' "
                                                           "events for 10 minutes"]))


def _probe_events(ctx: Context, pod: Obj, c: ContainerEntry, reason: str,
                  needle: str) -> list[Obj]:
    return [e for e in _container_events(ctx, pod, c, reason)
            if needle in _message(e).lower()]


@rule("liveness-probe-failed", family=FAMILY, title="Liveness probe fails and restarts the "
      "container", severity="warning", docs=DOCS_PROBES, rank=30, supersedes=("crash-loop",))
def liveness_probe_failed(ctx: Context) -> Iterable[Finding]:
    """The kubelet kills the container because its liveness probe fails."""
    for pod in ctx.pods_with(UNHEALTHY):
        for c in ctx.containers(pod):
            unhealthy = _probe_events(ctx, pod, c, "Unhealthy", "liveness probe failed")
            if not unhealthy:
                continue
            killing = _probe_events(ctx, pod, c, "Killing", "failed liveness probe")
            threshold = _int(_dict(c.spec.get("livenessProbe")).get("failureThreshold")) or 3
            if killing or (c.restarts > 0 and sum(map(_count, unhealthy)) >= threshold):
                yield _liveness_finding(ctx, pod, c, unhealthy, killing)


def _liveness_finding(ctx: Context, pod: Obj, c: ContainerEntry, unhealthy: list[Obj],
                      killing: list[Obj]) -> Finding:
    ns, name = _where(pod)
    probe = _dict(c.spec.get("livenessProbe"))
    messages = [_message(e) for e in unhealthy]
    cause = probe_cause(messages[-3:])
    ev = [event_evidence(unhealthy[-1])] + [event_evidence(e) for e in killing[-1:]]
    ev.append(Evidence("spec", f"livenessProbe: {probe_text(probe)}",
                       f"{_spec_path(c)}.livenessProbe"))
    ev.append(status_evidence(f"{c.path}.restartCount", c.restarts))
    if c.last_terminated:
        ev += _term_evidence(c, c.last_terminated, "lastState.terminated")
    looping = c.waiting.get("reason") == "CrashLoopBackOff"
    summary = (f"Container '{c.name}' of pod {ns}/{name} is restarted by its liveness probe "
               f"({probe_text(probe).split(' (')[0]}): {cause}.")
    action = _probe_port_fix(ctx, pod, c, "livenessProbe", messages)
    words = (_probe_words(cause, "liveness")
             + ("" if action else " No automatic change is proposed: the right probe "
                "depends on the application."))
    return ctx.finding(
        "liveness-probe-failed", pod, summary, ev,
        Remediation(words, tuple(_probe_cmds(pod, c, probe, previous=True)), action),
        confidence=0.92 if killing else 0.75,
        first_seen=event_first_seen(unhealthy + killing),
        severity="critical" if looping else "warning")


def _probe_words(cause: str, which: str) -> str:
    if "404" in cause:
        return f"Set the {which} probe path to an endpoint the application serves."
    if "refused" in cause:
        return (f"Make the {which} probe use the port the application listens on, or give "
                "it time to start (a startupProbe or a longer initialDelaySeconds).")
    if "slower" in cause:
        return (f"Raise the {which} probe's timeoutSeconds, or make the health endpoint "
                "cheap (no calls to dependencies).")
    return (f"Check what the application's health endpoint reports; the {which} probe "
            "should only test the process itself.")


def container_port(c: ContainerEntry, port: Any) -> int | None:
    """A probe port as a number: numeric as is, a name through the container's ports."""
    if _int(port) is not None:
        return _int(port)
    for p in _list(c.spec.get("ports")):
        if isinstance(p, dict) and p.get("name") == port:
            return _int(p.get("containerPort"))
    return None


def _probe_cmds(pod: Obj, c: ContainerEntry, probe: Obj, *, previous: bool) -> list[str]:
    ns, name = _where(pod)
    cmds = _read_cmds(ns, name, c.name, previous=previous)
    http = _dict(probe.get("httpGet"))
    port = container_port(c, http.get("port"))
    if port is not None:
        cmds.append(f"kubectl port-forward pod/{name} -n {ns} {port}:{port} & "
                    f"curl -i http://127.0.0.1:{port}{_text(http.get('path')) or '/'}")
    return cmds


@rule("readiness-probe-failed", family=FAMILY, title="Readiness probe fails: pod gets no "
      "traffic", severity="warning", docs=DOCS_PROBES, rank=40)
def readiness_probe_failed(ctx: Context) -> Iterable[Finding]:
    """A running container held out of its Services because readiness fails."""
    for pod in ctx.pods_with(UNHEALTHY):
        if _text(_dict(pod.get("status")).get("phase")) != "Running":
            continue
        for c in ctx.containers(pod):
            if "running" not in c.state or c.status.get("ready") is True or c.init:
                continue
            unhealthy = _probe_events(ctx, pod, c, "Unhealthy", "readiness probe failed")
            if unhealthy:
                yield _readiness_finding(ctx, pod, c, unhealthy)


def _ready_condition(pod: Obj) -> Obj:
    for cond in _list(_dict(pod.get("status")).get("conditions")):
        if isinstance(cond, dict) and cond.get("type") == "Ready":
            return cond
    return {}


def _readiness_finding(ctx: Context, pod: Obj, c: ContainerEntry,
                       unhealthy: list[Obj]) -> Finding:
    ns, name = _where(pod)
    probe = _dict(c.spec.get("readinessProbe"))
    messages = [_message(e) for e in unhealthy]
    cause = probe_cause(messages[-3:])
    cond = _ready_condition(pod)
    since = parse_time(cond.get("lastTransitionTime")) if cond.get("status") == "False" \
        else None
    ev = [status_evidence(f"{c.path}.ready", c.status.get("ready"))]
    if cond:
        ev.append(Evidence("status", f"Ready={cond.get('status')} "
                           f"reason={cond.get('reason')}: {_text(cond.get('message'))}".strip(),
                           "status.conditions[Ready]", since))
    ev.append(event_evidence(unhealthy[-1]))
    ev.append(Evidence("spec", f"readinessProbe: {probe_text(probe)}",
                       f"{_spec_path(c)}.readinessProbe"))
    ev += _log_ev(c.name, quote_log(ctx, pod, c.name, prefer_previous=False))
    summary = (f"Container '{c.name}' of pod {ns}/{name} is running but not Ready: its "
               f"readiness probe ({probe_text(probe).split(' (')[0]}) fails, {cause}; "
               "its Services send it no traffic.")
    action = _probe_port_fix(ctx, pod, c, "readinessProbe", messages)
    return ctx.finding(
        "readiness-probe-failed", pod, summary, ev,
        Remediation(_probe_words(cause, "readiness")
                    + " The probe may be right: then fix what the application reports as "
                    "not ready (often a dependency).",
                    tuple(_probe_cmds(pod, c, probe, previous=False)), action),
        confidence=0.9, first_seen=earliest(event_first_seen(unhealthy), since))


# =============================================================================
# evicted
# =============================================================================

_LOW_ON = re.compile(r"low on resource: ([\w./-]+)")
_USAGE = re.compile(r"Container (\S+) was using (\S+?), (?:request is (\S+?)|which exceeds "
                    r"its request of (\S+?))[,.]")
_PRESSURE = {"memory": "MemoryPressure", "ephemeral-storage": "DiskPressure",
             "nodefs": "DiskPressure", "imagefs": "DiskPressure", "pid": "PIDPressure"}


def starved_resource(message: str) -> str:
    """The resource an eviction message names."""
    m = _LOW_ON.search(message)
    if m:
        return m.group(1).rstrip(".")
    low = message.lower()
    if "ephemeral" in low or "emptydir" in low:
        return "ephemeral-storage"
    return ""


@rule("evicted", family=FAMILY, title="Pod evicted by the kubelet", severity="warning",
      docs=DOCS_EVICTED, rank=20)
def evicted(ctx: Context) -> Iterable[Finding]:
    """Pods the kubelet evicted for node pressure; the record stays until deleted."""
    for pod in ctx.pods_with(EVICTED):
        status = _dict(pod.get("status"))
        if status.get("reason") == "Evicted":
            yield _evicted_finding(ctx, pod, status)


def _evicted_finding(ctx: Context, pod: Obj, status: Obj) -> Finding:
    ns, name = _where(pod)
    message = _text(status.get("message"))
    resource = starved_resource(message)
    node = _text(_dict(pod.get("spec")).get("nodeName"))
    events = ctx.events(pod, reason="Evicted")
    ev = [status_evidence("status.phase", status.get("phase")),
          status_evidence("status.reason", "Evicted")]
    if message:
        ev.append(status_evidence("status.message", _clip(message, 500)))
    ev += [event_evidence(e) for e in events[-1:]]
    ev += _pressure_evidence(ctx, node, resource)
    usage = _USAGE.search(message)
    summary = (f"Pod {ns}/{name} was evicted" + (f" from node {node}" if node else "")
               + (f" because the node ran low on {resource}" if resource else "")
               + (f"; container {usage.group(1)} was using {usage.group(2)} with request "
                  f"{usage.group(3) or usage.group(4)}" if usage else "") + ".")
    conds = [parse_time(_dict(c).get("lastTransitionTime"))
             for c in _list(status.get("conditions"))
             if _dict(c).get("type") == "DisruptionTarget"]
    ended = [parse_time(c.terminated.get("finishedAt")) for c in ctx.containers(pod)]
    return ctx.finding("evicted", pod, summary, ev,
                       _evicted_remediation(ctx, pod, resource, node), confidence=0.95,
                       first_seen=earliest(event_first_seen(events), *conds)
                       or earliest(*ended))


def _pressure_evidence(ctx: Context, node: str, resource: str) -> list[Evidence]:
    cond_type = _PRESSURE.get(resource)
    obj = ctx.get("Node", None, node) if node and cond_type else None
    for cond in _list(_dict(_dict(obj).get("status")).get("conditions")):
        if isinstance(cond, dict) and cond.get("type") == cond_type:
            return [Evidence("status", f"{cond_type}={cond.get('status')}: "
                             f"{_text(cond.get('message'))}".strip(),
                             f"Node/{node} status.conditions[{cond_type}]",
                             parse_time(cond.get("lastTransitionTime")))]
    return []


def _evicted_remediation(ctx: Context, pod: Obj, resource: str, node: str) -> Remediation:
    ns, name = _where(pod)
    if resource == "memory":
        words = ("Set memory requests close to real usage so this pod is not first in line, "
                 "and give the node headroom; then delete the evicted pod record.")
    elif resource:
        words = (f"Set {resource} requests/limits (and emptyDir sizeLimit) and stop the "
                 "container filling the node's disk; then delete the evicted pod record.")
    else:
        words = "Find which resource the node lacked, then delete the evicted pod record."
    cmds = ([f"kubectl describe node {node}"] if node else []) + [
        f"kubectl describe pod {name} -n {ns}",
        f"kubectl get pods -n {ns} --field-selector=status.phase=Failed",
        f"kubectl delete pod {name} -n {ns}"]
    controlled = any(isinstance(r, dict) and r.get("controller")
                     for r in _list(md(pod).get("ownerReferences")))
    if controlled:
        action = delete_pod(pod, description=f"Delete the evicted pod record {ns}/{name} "
                            "(its controller already runs a replacement)")
    else:
        action = manual(pod, f"Recreate bare pod {ns}/{name} from its manifest once the "
                        "node has room (deleting it only removes the record)", tier="low")
    return Remediation(words, tuple(cmds), action)


# =============================================================================
# init-container-failed
# =============================================================================

def _init_failure(c: ContainerEntry) -> tuple[Obj, str] | None:
    """The failed run of an init container: now terminated non-zero, or backing off."""
    if not c.init or _is_sidecar(c):
        return None
    code = _int(c.terminated.get("exitCode"))
    if code not in (None, 0):
        return c.terminated, "state.terminated"
    last = _int(c.last_terminated.get("exitCode"))
    if last not in (None, 0) and (c.waiting.get("reason") in ("CrashLoopBackOff", None, "")
                                  or "running" in c.state):
        return c.last_terminated, "lastState.terminated"
    return None


@rule("init-container-failed", family=FAMILY, title="Init container fails: pod never starts",
      severity="critical", docs=DOCS_INIT, rank=35, supersedes=("crash-loop",))
def init_container_failed(ctx: Context) -> Iterable[Finding]:
    """An init container exits non-zero, so the app containers never start."""
    for pod in ctx.pods_with(FAILED):
        for c in ctx.containers(pod):
            hit = _init_failure(c)
            if hit is not None:
                yield _init_finding(ctx, pod, c, *hit)


def _init_finding(ctx: Context, pod: Obj, c: ContainerEntry, term: Obj,
                  where: str) -> Finding:
    ns, name = _where(pod)
    code = _int(term.get("exitCode"))
    q = quote_log(ctx, pod, c.name, prefer_previous=where == "lastState.terminated", tail=3)
    backoff = _backoff_events(ctx, pod, c)
    ev = []
    if c.waiting.get("reason"):
        ev.append(status_evidence(f"{c.path}.state.waiting.reason", c.waiting["reason"]))
    ev += _term_evidence(c, term, where)
    ev.append(status_evidence(f"{c.path}.restartCount", c.restarts))
    ev += _log_ev(c.name, q) + [event_evidence(e) for e in backoff[-1:]]
    phase = _text(_dict(pod.get("status")).get("phase"))
    if phase:
        ev.append(status_evidence("status.phase", phase))
    line = q.decisive
    summary = (f"Init container '{c.name}' of pod {ns}/{name} exits {code} "
               f"({exit_meaning(code)}), so the app containers never start"
               + (f"; its log says: {_clip(masked(line)).rstrip('.')}" if line else "")
               + ".")
    cmds = _read_cmds(ns, name, c.name, previous=where == "lastState.terminated")
    words = ("Read the init container's log, fix what it waits for or runs (a migration, a "
             "dependency check, a missing file); the pod retries on its own"
             + ("." if phase != "Failed" else ", or recreate it (restartPolicy Never)."))
    return ctx.finding(
        "init-container-failed", pod, summary, ev, Remediation(words, tuple(cmds)),
        confidence=0.9 if q.kind in ("panic", "exception", "error") else 0.8,
        first_seen=earliest(event_first_seen(backoff), parse_time(term.get("startedAt")),
                            parse_time(term.get("finishedAt"))))

