"""Log rules: what the application itself says went wrong.

Reads the current and the previous container log of every in-scope pod once
per diagnosis (bounded: the tail `ctx.log_lines` keeps, each line cut to
MAX_LINE characters, ANSI colours and control bytes dropped) and sorts the
lines into four findings per pod: RBAC denials, DNS failures, unreachable
dependencies (linked to the Service they target) and application errors.
The specific ones supersede `app-error`: a redis ConnectionError traceback is
explained by "connection refused", not by the traceback.
"""

from __future__ import annotations

import re
import weakref
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from difflib import get_close_matches
from functools import lru_cache, partial
from itertools import accumulate, compress
from operator import attrgetter, is_, itemgetter
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aiops.diagnose.actions import pod_spec_of, pod_template_path, pointer, target_of
from aiops.diagnose.context import (
    LOG_LINE_LIMIT,
    ContainerEntry,
    Context,
    Obj,
    earliest,
    event_first_seen,
    log_evidence,
    md,
    parse_time,
    tail_lines,
)
from aiops.diagnose.finding import Action, Evidence, Finding, Remediation
from aiops.diagnose.registry import prefetch, rule
from aiops.diagnose.rules._common import as_dict as _dict
from aiops.diagnose.rules._common import as_list as _list
from aiops.diagnose.rules.services import backends, describe_backends, selector_fix
from aiops.model import LOG_INDEXERS, ClusterState, LogKey

FAMILY = "logs"
DOCS_RBAC = "https://kubernetes.io/docs/reference/access-authn-authz/rbac/"
DOCS_DNS = "https://kubernetes.io/docs/tasks/administer-cluster/dns-debugging-resolution/"
DOCS_SVC = "https://kubernetes.io/docs/tasks/debug/debug-application/debug-service/"
DOCS_APP = "https://kubernetes.io/docs/tasks/debug/debug-application/debug-running-pod/"
MAX_LINE = 2000  # characters of one line that are searched
RECENT_LINES = 200  # a healthy container's errors count only in its recent log
MAX_EVIDENCE_LINES = 3

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# an RFC 3339-ish time near the start of the line: plain, [bracketed], or a JSON /
# logfmt field ({"time":"...", ts=...)
_STAMP = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?"
_TIMESTAMP = re.compile(f"({_STAMP})")
STAMP_SPAN = 120  # a line's timestamp is looked for in its first characters only
STALE_PREVIOUS = timedelta(hours=1)

# -- RBAC ---------------------------------------------------------------------------
_RBAC = re.compile(
    r'(?:is forbidden: )?User "(?P<user>[^"]+)" cannot (?P<verb>[\w*-]+) '
    r'resource "(?P<resource>[^"]+)"(?: in API group "(?P<group>[^"]*)")?'
    r'(?: in the namespace "(?P<ns>[^"]+)"| at the cluster scope)?')
# before 1.14: User "system:serviceaccount:ns:sa" cannot list pods in the namespace "ns"
_RBAC_OLD = re.compile(
    r'User "(?P<user>[^"]+)" cannot (?P<verb>[\w*-]+) (?P<resource>[\w./-]+)'
    r'(?: in the namespace "(?P<ns>[^"]+)"| at the cluster scope)')

# -- DNS ----------------------------------------------------------------------------
_DNS_TRIGGER = re.compile(
    r"no such host|name or service not known|temporary failure in name resolution|"
    r"could not translate host name|ENOTFOUND|EAI_AGAIN|NXDOMAIN|UnknownHostException|"
    r"nodename nor servname provided|server misbehaving|"
    r"lookup \S+ on \S+: (?:read|dial) udp \S+: i/o timeout", re.IGNORECASE)
_DNS_HOST = [re.compile(p) for p in (
    r"lookup (?P<host>[\w.-]+?)\.?(?: on [\w.:\[\]]+)?: ",
    r"getaddrinfo (?:ENOTFOUND|EAI_AGAIN) (?P<host>[\w.-]+)",
    r'could not translate host name "(?P<host>[^"]+)" to address',
    r"Failed to resolve '(?P<host>[^']+)'",
    r"UnknownHostException: (?P<host>[\w.-]+)",
    r"Error -?\d+ connecting to (?P<host>[\w.-]+):(?P<port>\d+)",
    r"can't find (?P<host>[\w.-]+?)\.?: NXDOMAIN",
    r"(?P<host>[A-Za-z][\w.-]*)\.? ?: (?:Name or service not known|"
    r"Temporary failure in name resolution)",
    r"host='(?P<host>[^']+)'",
    r"://(?:[^@/\s]+@)?(?P<host>[A-Za-z][\w.-]*)",
)]
# CoreDNS query log: `"A IN foo.svc.cluster.local. udp 45 false 512" NXDOMAIN` is a
# normal answer to a search-path probe, not a failure of the logging pod
_COREDNS_QUERY = re.compile(r'"[A-Z0-9]+ IN \S+ (?:udp|tcp) \d+')

# -- connection refused / timeouts --------------------------------------------------
_CONN_TRIGGER = re.compile(
    r"connection refused|ECONNREFUSED|Error 111 |i/o timeout|timed out|ETIMEDOUT|"
    r"no route to host|EHOSTUNREACH|Can't connect to MySQL server", re.IGNORECASE)
_HOST = r"(?P<host>\[[0-9a-fA-F:.]+\]|\d{1,3}(?:\.\d{1,3}){3}|[A-Za-z][\w.-]*)"
_CONN_HOST = [re.compile(p) for p in (
    r"Error \d+ connecting to " + _HOST + r":(?P<port>\d+)",
    r"dial tcp " + _HOST + r":(?P<port>\d+)",
    r"(?:ECONNREFUSED|ETIMEDOUT|EHOSTUNREACH) " + _HOST + r":(?P<port>\d+)",
    r'connection to server at "(?P<host>[^"]+)"(?: \([^)]*\))?, port (?P<port>\d+)',
    r'host "(?P<host>[^"]+)"(?: \([^)]*\))?.{0,40}?port (?P<port>\d+)',
    r"host='(?P<host>[^']+)', port=(?P<port>\d+)",
    r"Can't connect to MySQL server on '(?P<host>[^':]+)(?::(?P<port>\d+))?'",
    r'upstream: "\w+://' + _HOST + r":(?P<port>\d+)",
    r"://(?:[^@/\s]+@)?" + _HOST + r":(?P<port>\d{1,5})",
    r"(?<![\w.:/-])" + _HOST + r":(?P<port>\d{2,5})\b(?!:\d)",
)]
_LOCAL = {"localhost", "127.0.0.1", "::1", "[::1]", "0.0.0.0"}

# -- application errors -------------------------------------------------------------
_TB_START = "Traceback (most recent call last):"
_PY_EXC = re.compile(r"^(?P<cls>[A-Za-z_][\w.]*)(?::\s*(?P<msg>.*))?$")
_PANIC = re.compile(r"^(?:panic|fatal error): (?P<msg>.+)")
_JAVA_THREAD = re.compile(r'Exception in thread "[^"]*" (?P<cls>[\w.$]+)(?::\s*(?P<msg>.*))?')
_JAVA_CAUSE = re.compile(r"^\s*Caused by: (?P<cls>[\w.$]+)(?::\s*(?P<msg>.*))?")
_FATAL = re.compile(r"\bFATAL\b|\bCRITICAL\b|level=fatal|\"level\":\s*\"fatal\"")
_DIVISION = re.compile(r"division by zero|divide by zero", re.IGNORECASE)
_CLASS = re.compile(r"(?<![\w.$])(?P<cls>(?:[\w$]+\.)*[A-Z]\w*(?:Exception|Error))"
                    r"(?:\s*\[\w+\])?:\s+(?P<msg>\S.*)")
_UNCAUGHT = re.compile(r"\b(?:uncaught|unhandled) (?:exception|error|promise rejection)",
                       re.IGNORECASE)


# lower-case keywords that gate the regexes (a substring test costs far less)
_DNS_WORDS = ("no such host", "name or service not known", "name resolution",
              "could not translate host name", "enotfound", "eai_again", "nxdomain",
              "unknownhostexception", "nodename nor servname", "server misbehaving",
              "i/o timeout")
_CONN_WORDS = ("refused", "error 111 ", "i/o timeout", "timed out", "etimedout",
               "no route to host", "ehostunreach", "can't connect to mysql")
_APP_WORDS = ("panic", "fatal", "exception", "error", "critical", "by zero", "uncaught",
              "unhandled", "caused by")
_ANY_WORDS = (*_DNS_WORDS, *_CONN_WORDS, *_APP_WORDS, "cannot",
              "traceback (most recent call last):")
# the same lines are found by sweeping only the keywords that contain no other one
# ('error 111 ' holds 'error'), each once
_SWEEP_WORDS = tuple(w for i, w in enumerate(_ANY_WORDS) if w not in _ANY_WORDS[:i]
                     and not any(o != w and o in w for o in _ANY_WORDS))
MAX_TRACEBACK = 500

# The literal alternatives of the IGNORECASE triggers, lower-cased. On ASCII text
# IGNORECASE is plain ASCII case folding, so "the regex matches" is exactly "one of
# these occurs in the lower-cased text" (the one non-literal DNS alternative
# starts with 'lookup '); other text still goes through the regexes.
_DNS_LITERALS = ("no such host", "name or service not known",
                 "temporary failure in name resolution", "could not translate host name",
                 "enotfound", "eai_again", "nxdomain", "unknownhostexception",
                 "nodename nor servname provided", "server misbehaving")
_CONN_LITERALS = ("connection refused", "econnrefused", "error 111 ", "i/o timeout",
                  "timed out", "etimedout", "no route to host", "ehostunreach",
                  "can't connect to mysql server")


def _holds(text: str, words: tuple[str, ...]) -> bool:
    """Whether any of `words` occurs in `text` (a loop: cheaper than any() over a
    generator, and this runs for every candidate line)."""
    for w in words:  # noqa: SIM110
        if w in text:
            return True
    return False


def _clean(line: str) -> str:
    """Bounded, printable, encodable text for matching and quoting."""
    line = line[:MAX_LINE]
    if line.isascii() and line.isprintable():  # the common case: nothing to change
        return line
    line = _ANSI.sub("", line)
    line = line.encode("utf-8", "replace").decode("utf-8", "replace")
    return _CONTROL.sub("\ufffd", line)


def _line_time(line: str) -> datetime | None:
    m = _TIMESTAMP.search(line, 0, STAMP_SPAN)
    return _stamp_time(m.group(1) if m else None)


# -- scanning -----------------------------------------------------------------------

class Hit(NamedTuple):
    """One matching log line with what was parsed out of it (a named tuple: a noisy
    log yields thousands, and a tuple is made several times faster than a frozen
    dataclass)."""

    kind: str  # rbac | dns | conn | app
    container: str
    previous: bool
    line_no: int
    line: str
    data: dict[str, Any]
    time: datetime | None = None

    def evidence(self) -> Evidence:
        e = log_evidence(self.container, self.line_no, self.line, self.previous)
        return Evidence(e.source, e.text, e.ref, self.time)


# a Hit from a tuple of its fields, without the Python-level `__new__` of a named
# tuple (tens of thousands are made by a first triage)
_hit = partial(tuple.__new__, Hit)
# fields of many hits read by `map` (a noisy log has thousands of them)
_PREVIOUS, _DATA, _TIME = itemgetter(2), itemgetter(5), itemgetter(6)
_RUN = itemgetter(2, 1)  # (previous, container): the log a hit is in


@dataclass
class PodScan:
    pod: Obj
    hits: dict[str, list[Hit]] = field(default_factory=dict)
    runs: dict[tuple[str, bool], datetime | None] = field(default_factory=dict)
    # what the findings derive from the hits alone, kept with them (see `derived`)
    memo: dict[str, Any] = field(default_factory=dict)

    def derived(self, key: str, fn: Callable[[], Any]) -> Any:
        if key not in self.memo:
            self.memo[key] = fn()
        return self.memo[key]

    def add(self, h: Hit) -> None:
        self.hits.setdefault(h.kind, []).append(h)


_SCANS: weakref.WeakKeyDictionary[Context, list[PodScan]] = weakref.WeakKeyDictionary()


def scan(ctx: Context) -> list[PodScan]:
    """The in-scope pods whose logs say something, shared by the four rules.

    Each pod's logs are scanned once per state (see `pod_scan`), so a later
    diagnosis of the same state, whole cluster or one pod, reads the result."""
    cached = _SCANS.get(ctx)
    if cached is None:
        if ctx.whole_cluster:
            cached = ctx.shared(("logs", "pods-with-hits"), lambda: _with_hits(ctx))
        else:
            cached = _with_hits(ctx)
        _SCANS[ctx] = cached
    return cached


class Swept(NamedTuple):
    """A noisy log's candidate lines (`_candidate_lines` of its tail) with, for each,
    the text its classification is remembered by and its timestamp (None when none),
    as `_line_facts` gives them: worked out by RE2 for the candidate lines of many
    logs at once (`_candidates`). A key of None: the line is not printable ASCII, and
    `_line_facts` is asked."""

    lines: list[int]
    keys: list[str | None]
    stamps: list[str | None]


# (previous, log key) -> its candidate lines, None when no line of the whole log
# holds a keyword
Sweep = dict[tuple[bool, LogKey], Swept | None]


@prefetch("rbac-forbidden", "dns-failure", "dependency-unreachable", "app-error")
def _start_sweep(ctx: Context) -> None:
    """A whole-cluster triage takes what the source's load swept (`_index_logs`) and
    starts sweeping the other logs at once: their RE2 passes run on the other core
    while the rules before the log rules run."""
    key = ("logs", "sweep")
    if not ctx.whole_cluster or not (ctx.state.logs or ctx.state.previous_logs) \
            or ctx.is_shared(key):
        return
    out, todo = _loaded_sweep(ctx)
    if todo:
        ctx.prefetch(key, lambda: _finish_sweep(ctx, out, todo))
    else:
        ctx.shared(key, lambda: out)


def _with_hits(ctx: Context) -> list[PodScan]:
    if not ctx.whole_cluster:
        return [s for p in ctx.pods() if (s := pod_scan(ctx, p)) is not None]
    sweep = ctx.shared(("logs", "sweep"), lambda: _sweep(ctx))
    loud = _loud_pods(ctx.state, sweep)
    if ctx.state.names_unique("Pod"):  # each pod's (namespace, name) is text, its own
        named = ctx.state.named("Pod")
        pods = ctx.in_order({id(p) for k in loud if (p := named.get(k)) is not None})
    else:
        pods = [p for p in ctx.pods() if _ns_name(p) in loud]
    return [s for p in pods if (s := pod_scan(ctx, p, sweep)) is not None]


def _loud_pods(state: ClusterState, sweep: Sweep) -> set[tuple[str, str]]:
    """(namespace, pod) of every log the sweep did not find quiet (a keyword in it,
    or not swept): the other pods' scans find nothing, so they are not made."""
    if len(sweep) == len(state.logs) + len(state.previous_logs):  # every log swept
        return {(key[0], key[1]) for (_, key), swept in sweep.items() if swept is not None}
    out: set[tuple[str, str]] = set()
    for previous, src in ((False, state.logs), (True, state.previous_logs)):
        for key in src:
            if isinstance(key, tuple) and len(key) == 3 and \
                    sweep.get((previous, key), _UNSWEPT) is not None:
                out.add((key[0], key[1]))
    return out


def pod_scan(ctx: Context, pod: Obj, sweep: Sweep | None = None) -> PodScan | None:
    """One pod's scanned logs if they say anything, kept on the state (the scan only
    reads the state); a pod whose logs say nothing is kept as itself. `sweep`, when
    the whole cluster is scanned, has swept its logs already."""
    table: dict[int, PodScan | Obj] = ctx.shared(("logs", "scans"), dict)
    found = table.get(id(pod))
    if found is pod:
        return None
    if not isinstance(found, PodScan) or found.pod is not pod:
        scanned = _scan_pod(ctx, pod, sweep)
        table[id(pod)] = scanned if scanned.hits else pod
        return scanned if scanned.hits else None
    return found


def _healthy(c: ContainerEntry) -> bool:
    return c.status.get("ready") is True and not c.waiting and not c.terminated


def _recovered(ctx: Context, c: ContainerEntry) -> bool:
    """A container that is healthy now and last died over STALE_PREVIOUS ago: its
    previous log is history, not the current problem."""
    if not _healthy(c):
        return False
    finished = parse_time(c.last_terminated.get("finishedAt"))
    try:
        return finished is None or ctx.now - finished > STALE_PREVIOUS
    except TypeError:  # a naive capture time
        return False


def _offset(ctx: Context, ns: str, pod: str, c: str, previous: bool, n: int) -> int:
    """1-based number of the first line `log_lines` kept. Computed from the full
    text only for a truncated log (the common case costs nothing)."""
    if n < LOG_LINE_LIMIT:
        return 1
    src = ctx.state.previous_logs if previous else ctx.state.logs
    text = src.get((ns, pod, c))
    return len(text.splitlines()) - n + 1 if isinstance(text, str) else 1


def _scan_pod(ctx: Context, pod: Obj, sweep: Sweep | None = None) -> PodScan:
    m = md(pod)
    ns, name = str(m.get("namespace") or ""), str(m.get("name") or "")
    out = PodScan(pod)
    memo = ctx.shared(("logs", "classified"), dict)  # by line text (`_classify_stamped`)
    for c in ctx.containers(pod):
        if not isinstance(c.name, str) or not c.name:
            continue
        for previous in (True, False):
            if previous and _recovered(ctx, c):
                continue
            text = (ctx.state.previous_logs if previous else ctx.state.logs).get(
                (ns, name, c.name))
            # no keyword anywhere in the log: no line of its tail is a candidate, so it
            # is neither split nor swept line by line (most logs of a healthy cluster).
            # Asked of logs about as long as the tail only: a huge one is cut first.
            # (Also splitting a keyword-free huge one finds nothing: `sweep`, which
            # tested whole logs, skips it too.)
            swept = sweep.get((previous, (ns, name, c.name)), _UNSWEPT) if sweep else _UNSWEPT
            if swept is not _UNSWEPT:
                quiet = swept is None
            else:
                quiet = isinstance(text, str) and text.count("\n") <= LOG_LINE_LIMIT \
                    and not _any_keyword(text)
            lines = [] if quiet else ctx.log_lines(ns, name, c.name, previous)
            if not lines and not (quiet and text):
                continue
            run = c.last_terminated if previous else (c.state.get("running") or c.terminated)
            out.runs[(c.name, previous)] = parse_time(_dict(run).get("startedAt"))
            if quiet:
                continue
            start = _offset(ctx, ns, name, c.name, previous, len(lines))
            recent = len(lines) - RECENT_LINES if not previous and _healthy(c) else 0
            _scan_lines(out, c.name, previous, lines, start, max(recent, 0),
                        None if swept is _UNSWEPT else swept, memo)
    return out


def _any_keyword(text: str) -> bool:
    """Whether a log holds any keyword at all. Keywords hold no line break, so this
    is false exactly when no line (of the whole log, hence of its tail) does."""
    low = text.lower()
    return _holds(low, _SWEEP_WORDS)


# the sweep as one RE2 pattern; on ASCII text its ASCII case folding is exactly
# `lower()`, so it matches where `_any_keyword` is true
_SWEEP_RE2 = "|".join(re.escape(w) for w in _SWEEP_WORDS)
_BATCH_CHARS = 4 << 20  # logs handed to RE2 at a time (bounded extra memory)


_UNSWEPT: Any = object()  # a log `_sweep` left to `_any_keyword` / `_candidate_lines`


def _sweep(ctx: Context) -> Sweep:
    """`_any_keyword` of every ASCII log of the state, then `_candidate_lines` of the
    tails of those holding any (see `_candidates`): what a source's load swept
    already (`_index_logs`), the other logs now. Other logs (non-ASCII, not text)
    are left out."""
    return _finish_sweep(ctx, *_loaded_sweep(ctx))


def _loaded_sweep(ctx: Context) -> tuple[Sweep, list[tuple[bool, LogKey]]]:
    """The sweep of the logs the source's load swept, their tails handed to
    `ctx.log_lines`, and the ASCII logs it did not sweep (or that were replaced since)."""
    state = ctx.state
    if _LOADING in state.__dict__:  # a loader that never said all its logs were in
        _index_logs(state, None)
    loaded: _AsLoaded | None = state.__dict__.get(_AS_LOADED)
    if loaded is not None and _unchanged(state.logs, loaded.logs) \
            and _unchanged(state.previous_logs, loaded.previous):
        found = loaded.reuse
    else:
        found = _reuse(state, state.__dict__.get(_KNOWN) or {})
    ctx.keep_log_lines(found.lines)
    return dict(found.out), list(found.todo)


class _Reuse(NamedTuple):
    """What `_loaded_sweep` takes from the load: the sweep of the logs it swept, their
    tails by `Context.log_lines` key, and the ASCII logs left to sweep."""

    out: Sweep
    lines: dict[tuple[str, str, str, bool], list[str]]
    todo: list[tuple[bool, LogKey]]


def _reuse(state: ClusterState, known: dict[tuple[bool, LogKey], _Loaded]) -> _Reuse:
    """The `_Reuse` of the state's present logs, each looked up in `known`."""
    found = _Reuse({}, {}, [])
    for previous, src in ((False, state.logs), (True, state.previous_logs)):
        for key, text in src.items():
            if isinstance(text, str) and text.isascii() and isinstance(key, tuple) \
                    and len(key) == 3:
                seen = known.get((previous, key))
                if seen is None or seen.text is not text:  # not read, or replaced since
                    found.todo.append((previous, key))
                    continue
                found.out[(previous, key)] = seen.swept
                if seen.lines is not None:
                    found.lines[(*key, previous)] = seen.lines
    return found


# a dict's keys and values, in order
Listing = tuple[list[Any], list[Any]]


class _AsLoaded(NamedTuple):
    """`_reuse` of the state as its source finished loading it, with the logs it had
    then: while they are still the state's (`_unchanged`), a triage takes it as it is
    instead of looking each log up."""

    logs: Listing
    previous: Listing
    reuse: _Reuse


def _listing(src: dict[Any, Any]) -> Listing:
    return list(src), list(src.values())


def _unchanged(src: dict[Any, Any], listing: Listing) -> bool:
    """Whether `src` holds the very keys and values of `listing`, in its order (in C:
    the identity tests of 10,000 logs cost less than looking one up in Python)."""
    keys, values = listing
    return len(src) == len(keys) and all(map(is_, src.values(), values)) and list(src) == keys


def _finish_sweep(ctx: Context, out: Sweep, todo: list[tuple[bool, LogKey]]) -> Sweep:
    """`out` with the logs of `todo` swept (`_sweep_batch`, a batch at a time: its
    buffers are reused) and their tails handed to `ctx.log_lines`. It runs in one
    thread, in the background of a whole-cluster triage (RE2 runs without the GIL),
    while the rules use the other core: more threads only took the core from them."""
    state = ctx.state
    texts = [(state.previous_logs if previous else state.logs)[key] for previous, key in todo]
    for a, b in _batches(texts):
        tails: dict[tuple[str, str, str, bool], list[str]] = {}
        for (previous, key), found in zip(todo[a:b], _sweep_batch(texts[a:b]), strict=True):
            out[(previous, key)] = found[0] if found else None
            if found:
                tails[(*key, previous)] = found[1]
        ctx.keep_log_lines(tails)
    return out


def _candidates(tails: list[list[str]]) -> list[Swept]:
    """`_candidate_lines` of each tail with each candidate's key and stamp
    (`_keys_and_stamps`), by RE2 over the lines of all of them at once instead of a
    lower() and 27 searches per line in Python."""
    if not tails:
        return []
    starts = np.fromiter(accumulate(map(len, tails), initial=0), dtype=np.int64,
                         count=len(tails) + 1)
    lines = _arrow_strings([x for tail in tails for x in tail])
    found = np.flatnonzero(_match_sweep(lines))
    keys, stamps = _keys_and_stamps(lines.take(pa.array(found)))
    cuts = np.searchsorted(found, starts).tolist()
    return [Swept((found[a:b] - start).tolist(), keys[a:b], stamps[a:b])
            for a, b, start in zip(cuts, cuts[1:], starts.tolist(), strict=False)]


_EMPTY = pa.scalar(b"", pa.large_binary())


def _keys_and_stamps(lines: pa.LargeStringArray) -> tuple[list[str | None],
                                                          list[str | None]]:
    """`_line_facts` of ASCII lines, by RE2 over all of them (a per-line regex search
    and string building in Python cost more than the rest of the scan): the key of
    a line that is not printable is None. Keys are made unique, so that equal keys
    are one string and hash once. Characters are bytes, so lines are cut as bytes."""
    raw = lines.view(pa.large_binary())
    if len(raw) and pc.max(pc.binary_length(raw)).as_py() > MAX_LINE:
        raw = pc.binary_slice(raw, 0, MAX_LINE)
    head = pc.binary_slice(raw, 0, STAMP_SPAN).view(pa.large_string())
    keyed = pc.binary_join_element_wise(
        pc.replace_substring_regex(head, pattern=_STAMP, replacement="\0",
                                   max_replacements=1).view(pa.large_binary()),
        pc.binary_slice(raw, STAMP_SPAN, MAX_LINE), _EMPTY)
    keyed = pc.if_else(pc.ascii_is_printable(raw.view(pa.large_string())),
                       keyed.view(pa.large_string()), None)
    codes = keyed.dictionary_encode()
    texts: list[str | None] = [*codes.dictionary.to_pylist(), None]
    keys = [texts[c] for c in pc.fill_null(codes.indices, -1).to_numpy().tolist()]
    # no match: a null struct, whose field reads None
    stamps = pc.struct_field(pc.extract_regex(head, pattern=f"(?P<s>{_STAMP})"),
                             [0]).to_pylist()
    return keys, stamps


_KNOWN = "_diagnose_log_sweep"  # on the state: (previous, key) -> its `_Loaded`
_AS_LOADED = "_diagnose_log_sweep_as_loaded"  # on the state: its `_AsLoaded`
_LOADING = "_diagnose_log_loading"  # on the state while a source loads it


class _Loaded(NamedTuple):
    """What the sweep found in one log as its source loaded it, with the text it
    read (a log replaced since is swept again) and, for a log holding a keyword,
    its tail as `Context.log_lines` splits it."""

    text: str
    swept: Swept | None
    lines: list[str] | None


class _LoadSweep:
    """The logs read since the last batch went to the worker, and the batches in
    flight."""

    __slots__ = ("entries", "flight", "size", "texts")

    def __init__(self) -> None:
        self.entries: list[tuple[bool, LogKey, str]] = []
        self.texts: list[str] = []
        self.size = 0
        self.flight: list[tuple[list[tuple[bool, LogKey, str]],
                                Future[list[tuple[Swept, list[str]] | None]]]] = []


def _sweep_batch(texts: list[str]) -> list[tuple[Swept, list[str]] | None]:
    """`_sweep` of a batch of logs: for each, None when it holds no keyword, else its
    candidate lines and its tail."""
    said = _match_sweep(_arrow_strings(texts)).tolist()
    tails = [tail_lines(t) for t, hit in zip(texts, said, strict=True) if hit]
    found = iter(zip(_candidates(tails), tails, strict=True))
    return [next(found) if hit else None for hit in said]


def _index_logs(state: ClusterState, added: list[tuple[bool, LogKey]] | None) -> None:
    """`_sweep` done as a source loads the logs: one of the model's LOG_INDEXERS.
    Each batch of about _BATCH_CHARS goes to a worker thread while the loading
    (which leaves the other core idle) goes on. Done during a first triage
    instead, beside the rules, its Python parts (splitting the noisy logs, copying
    ~100 MB of logs into Arrow) held the interpreter lock the rules wait for:
    about 70 ms of a 0.8 s triage of 10,000 pods, against some 30 ms more for the
    load. A batch that fails is left to `_sweep`."""
    run: _LoadSweep | None = state.__dict__.get(_LOADING)
    if run is None:
        run = state.__dict__[_LOADING] = _LoadSweep()
    for previous, key in added or ():
        text = (state.previous_logs if previous else state.logs).get(key)
        if isinstance(text, str) and text.isascii():
            run.entries.append((previous, key, text))
            run.texts.append(text)
            run.size += len(text)
    if run.texts and (run.size >= _BATCH_CHARS or added is None):
        run.flight.append((run.entries, _index_worker().submit(_sweep_batch, run.texts)))
        run.entries, run.texts, run.size = [], [], 0
    if added is not None:
        return
    del state.__dict__[_LOADING]  # nothing left in flight on a loaded state
    table: dict[tuple[bool, LogKey], _Loaded] = state.__dict__.setdefault(_KNOWN, {})
    for entries, future in run.flight:
        try:
            found = future.result()
        except Exception:  # `_sweep` sweeps these logs itself
            continue
        for (previous, key, text), f in zip(entries, found, strict=True):
            table[(previous, key)] = _Loaded(text, *f) if f else _Loaded(text, None, None)
    state.__dict__[_AS_LOADED] = _AsLoaded(_listing(state.logs), _listing(state.previous_logs),
                                           _reuse(state, table))


@lru_cache(maxsize=1)
def _index_worker() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="aiops-log-index")


LOG_INDEXERS.append(_index_logs)


def _batches(texts: list[str]) -> Iterator[tuple[int, int]]:
    """Index ranges of about _BATCH_CHARS characters each."""
    start, size = 0, 0
    for i, t in enumerate(texts):
        size += len(t)
        if size >= _BATCH_CHARS:
            yield start, i + 1
            start, size = i + 1, 0
    if start < len(texts):
        yield start, len(texts)


def _arrow_strings(texts: list[str]) -> pa.LargeStringArray:
    """ASCII texts as one Arrow array: a single join and encode (offsets are the
    cumulative lengths, characters being bytes)."""
    data = "".join(texts).encode("ascii")
    offsets = np.fromiter(accumulate(map(len, texts), initial=0), dtype=np.int64,
                          count=len(texts) + 1)
    return pa.LargeStringArray.from_buffers(len(texts), pa.py_buffer(offsets),
                                            pa.py_buffer(data))


def _match_sweep(arr: pa.LargeStringArray) -> np.ndarray:
    return pc.match_substring_regex(arr, _SWEEP_RE2, ignore_case=True).to_numpy(
        zero_copy_only=False)


def _candidate_lines(lines: list[str]) -> list[int]:
    """Indices of lines holding any keyword. One `str.find` sweep per keyword over
    the joined, lower-cased log: far cheaper than a regex or a test per line."""
    text = "\n".join(lines).lower()
    if not _holds(text, _SWEEP_WORDS):
        return []
    starts = list(accumulate((len(x) + 1 for x in lines), initial=0))
    found: set[int] = set()
    for w in _SWEEP_WORDS:
        p = text.find(w)
        while p != -1:
            i = bisect_right(starts, p) - 1
            found.add(i)
            p = text.find(w, starts[i + 1] if i + 1 < len(starts) else len(text))
    return sorted(found)


def _traceback_end(lines: list[str], i: int) -> tuple[int, re.Match[str] | None]:
    """From a 'Traceback (most recent call last):' line, the final exception line
    (chained tracebacks included) and its parse; bounded by MAX_TRACEBACK lines."""
    for j in range(i + 1, min(len(lines), i + MAX_TRACEBACK)):
        line = lines[j][:MAX_LINE]
        stripped = line.strip()
        if not stripped or line[:1] in (" ", "\t") or _TB_START in line or stripped.startswith(
                ("During handling", "The above exception", "^", "~")):
            continue
        return j, _PY_EXC.match(_clean(stripped))
    return i, None


def _scan_lines(out: PodScan, container: str, previous: bool, lines: list[str], start: int,
                first_counted: int, swept: Swept | None = None,
                memo: dict[tuple[str, bool], Found] | None = None) -> None:
    """Parse only the lines a keyword sweep selects (`swept` if swept already),
    plus each traceback's end. `memo` keeps what a line said by its text with the
    timestamp taken out (see `_classify_stamped`). `lines` are text, as
    `Context.log_lines` splits them."""
    inside_until = -1  # last line of the Python traceback being read
    tb_ends: dict[int, re.Match[str]] = {}
    memo = {} if memo is None else memo
    hits = out.hits
    if swept is None:  # every line left to `_line_facts`
        found_at = _candidate_lines(lines)
        swept = Swept(found_at, [None] * len(found_at), [None] * len(found_at))
    for i, text, stamp, when in zip(swept.lines, swept.keys, swept.stamps,
                                    _stamp_times(swept.stamps), strict=True):
        if text is None:
            line, text, stamp = _line_facts(lines[i])
            when = _stamp_time(stamp)
        else:  # printable: `_clean` keeps it as it is
            line = lines[i][:MAX_LINE]
        # a line before `first_counted` is not recorded: only tracebacks are followed
        if i < first_counted:
            found: Found | tuple[()] = ()
        else:  # the memo look-up inlined: most lines are repeats
            key = (text, i > inside_until)
            found = memo.get(key)
            if found is None:
                found = _classify_stamped(lines, i, line, stamp, key, memo)
        if _TB_START in line and i >= inside_until:
            inside_until, exc = _traceback_end(lines, i)
            if exc is not None:
                tb_ends[inside_until] = exc
        if i in tb_ends:
            found = [f for f in found if f[0] != "app"]
        if found:
            for kind, data in found:  # `out.add`, inlined
                bucket = hits.get(kind)
                if bucket is None:
                    bucket = hits[kind] = []
                bucket.append(_hit((kind, container, previous, start + i, line, data, when)))
    for j, exc in tb_ends.items():
        if j >= first_counted:
            line = _clean(lines[j][:MAX_LINE])
            out.add(Hit("app", container, previous, start + j, line,
                        {"what": "Python traceback", "cls": exc.group("cls"),
                         "msg": exc.group("msg") or "", "weight": 5}, _line_time(line)))


def _stamp_times(stamps: list[str | None]) -> list[datetime | None]:
    """`_stamp_time` of each stamp: straight through `fromisoformat`, all at once, when
    every one has the common shape (a "T", no comma) and names its zone (a noisy
    log has tens of thousands)."""
    if stamps and None not in stamps and set(map(itemgetter(10), stamps)) == {"T"} \
            and "," not in "".join(stamps):
        try:
            times: list[datetime | None] = list(map(datetime.fromisoformat, stamps))
        except ValueError:
            pass
        else:
            if None not in map(attrgetter("tzinfo"), times):
                return times
    return list(map(_stamp_time, stamps))


def _line_facts(raw: str) -> tuple[str, str, str | None]:
    """A line as it is matched and quoted (`_clean`), the text what it says is
    remembered by (its timestamp replaced by NUL, which `_clean` never leaves), and
    its timestamp."""
    line = raw[:MAX_LINE]
    if not (line.isascii() and line.isprintable()):  # `_clean`'s own test, inlined
        line = _clean(line)
    m = _TIMESTAMP.search(line, 0, STAMP_SPAN)
    if m is None:
        return line, line, None
    return line, f"{line[:m.start()]}\0{line[m.end():]}", m.group(1)


Found = list[tuple[str, dict[str, Any]]]
MEMO_LIMIT = 100_000  # remembered line shapes per state (then the memo starts afresh)


def _classify_stamped(lines: list[str], i: int, line: str, stamp: str | None,
                      key: tuple[str, bool], memo: dict[tuple[str, bool], Found]) -> Found:
    """`_classify` of a line not in `memo`, kept there under `key` (its text with the
    timestamp taken out, and whether it counts as an app error): a failing container
    logs the same error again and again, each time stamped anew. What a line says
    depends on its neighbours only when it names no host itself, and what is parsed
    may quote the stamp: neither is remembered."""
    window = _Window(lines, i)
    found = _classify(window, line, app=key[1])
    if not window.read and not (stamp and _quotes(found, stamp)):
        if len(memo) >= MEMO_LIMIT:
            memo.clear()
        memo[key] = found
    return found


def _quotes(found: Found, text: str) -> bool:
    return any(isinstance(v, str) and text in v for _, d in found for v in d.values())


def _stamp_time(text: str | None) -> datetime | None:
    """The time of a `_TIMESTAMP` text, UTC when it names no zone. Straight through
    `fromisoformat` (which reads "Z" since 3.11) in the common shape: a noisy log
    has tens of thousands of stamped lines, and this was a quarter of their cost."""
    if not text:
        return None
    if text[10] != "T" or "," in text:
        text = text.replace(" ", "T").replace(",", ".")
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


class _Window:
    """A line's neighbours, joined only when a parser asks for them (and noted: a
    result read from the line alone may be reused for the same text elsewhere)."""

    __slots__ = ("i", "lines", "read")

    def __init__(self, lines: list[str], i: int) -> None:
        self.lines, self.i, self.read = lines, i, False

    def __call__(self) -> str:
        self.read = True
        return _window(self.lines, self.i)


def _classify(window: _Window, line: str, *, app: bool) -> Found:
    """What one line says (possibly several things). `app` is False inside a
    traceback, whose frames are not errors of their own."""
    found: Found = []
    text = line.replace('\\"', '"')  # JSON-encoded messages
    low = text.lower()
    if "cannot" in text and "User " in text:
        rb = _parse_rbac(text)
        if rb:
            found.append(("rbac", rb))
    dns = _parse_dns(text, window, low) if _holds(low, _DNS_WORDS) else None
    if dns is not None:
        found.append(("dns", dns))
    elif _holds(low, _CONN_WORDS) and _conn_trigger(text, low):
        found.append(("conn", _parse_conn(text, window, low)))
    if app and _TB_START not in line and _holds(low, _APP_WORDS):
        parsed = _parse_app(line, low)
        if parsed:
            found.append(("app", parsed))
    return found


def _parse_rbac(text: str) -> dict[str, Any] | None:
    m = _RBAC.search(text)
    old = m is None
    m = m or _RBAC_OLD.search(text)
    if not m:
        return None
    d = m.groupdict()
    resource, group = d["resource"], d.get("group")
    if old and group is None and "." in resource:  # "deployments.extensions"
        resource, _, group = resource.partition(".")
    cluster = d.get("ns") is None
    return {"user": d["user"], "verb": d["verb"], "resource": resource,
            "group": group or "", "namespace": d.get("ns") or "", "cluster": cluster}


def _sources(text: str, window: Callable[[], str]) -> Iterator[str]:
    """The line, then (only if the caller asks for more) its window."""
    yield text
    yield window()


def _window(lines: list[str], i: int) -> str:
    """The line with two neighbours each side, for hosts named on the next line."""
    return " ".join(_clean(x) for x in lines[max(0, i - 2): i + 3] if isinstance(x, str))


def _dns_trigger(text: str, low: str) -> bool:
    """`_DNS_TRIGGER.search(text)`, by substring tests on ASCII text."""
    if not text.isascii():
        return _DNS_TRIGGER.search(text) is not None
    return _holds(low, _DNS_LITERALS) or (
        "lookup " in low and _DNS_TRIGGER.search(text) is not None)


def _conn_trigger(text: str, low: str) -> bool:
    """`_CONN_TRIGGER.search(text)`, by substring tests on ASCII text."""
    if not text.isascii():
        return _CONN_TRIGGER.search(text) is not None
    return _holds(low, _CONN_LITERALS)


def _parse_dns(text: str, window: Callable[[], str], low: str) -> dict[str, Any] | None:
    if not _dns_trigger(text, low) or _COREDNS_QUERY.search(text):
        return None
    for source in _sources(text, window):
        for p in _DNS_HOST:
            m = p.search(source)
            if m and not m.group("host").replace(".", "").isdigit():
                host = m.group("host").rstrip(".")
                return {"host": host, "timeout": "timeout" in text.lower()}
    return {"host": None, "timeout": "timeout" in text.lower()}


def _parse_conn(text: str, window: Callable[[], str], low: str) -> dict[str, Any]:
    refused = "refused" in low or "error 111 " in low or "(111)" in low
    what = "connection refused" if refused else \
        "no route to host" if "route" in low or "ehostunreach" in low else "timeout"
    for source in _sources(text, window):
        for p in _CONN_HOST:
            m = p.search(source)
            if m:
                host = m.group("host").strip("[]")
                port = m.groupdict().get("port")
                return {"host": host, "port": int(port) if port else None, "what": what}
    return {"host": None, "port": None, "what": what}


def _parse_app(line: str, low: str) -> dict[str, Any] | None:
    s = line.strip()
    m = _PANIC.search(s)
    if m:
        return {"what": "panic" if s.startswith("panic") else "fatal error", "cls": "",
                "msg": m.group("msg"), "weight": 5}
    m = _JAVA_CAUSE.match(line)
    if m:
        return {"what": "root cause", "cls": m.group("cls"), "msg": m.group("msg") or "",
                "weight": 5}
    m = _JAVA_THREAD.search(s)
    if m:
        return {"what": "uncaught exception", "cls": m.group("cls"),
                "msg": m.group("msg") or "", "weight": 4}
    # each regex below only where its literal part occurs (see _DNS_LITERALS for why
    # ASCII text can be tested by substrings); the first two ignore case
    plain = s.isascii()
    ls = s.lower() if plain else ""
    if ("division by zero" in ls or "divide by zero" in ls) if plain else _DIVISION.search(s):
        return {"what": "division by zero", "cls": "", "msg": s, "weight": 4}
    if (not plain or "uncaught " in ls or "unhandled " in ls) and _UNCAUGHT.search(s):
        return {"what": "uncaught error", "cls": "", "msg": s, "weight": 3}
    if ("FATAL" in s or "CRITICAL" in s or "level=fatal" in s or '"fatal"' in s) \
            and _FATAL.search(s):
        return {"what": "fatal log line", "cls": "", "msg": s, "weight": 3}
    m = _CLASS.search(s) if ("exception" in low or "error" in low) and (
        "Exception" in s or "Error" in s) else None
    if m:
        return {"what": "exception", "cls": m.group("cls"), "msg": m.group("msg"),
                "weight": 2}
    return None


# -- shared finding helpers -------------------------------------------------------------

def _ns_name(pod: Obj) -> tuple[str, str]:
    m = md(pod)
    return str(m.get("namespace") or ""), str(m.get("name") or "")


def _where(h: Hit) -> str:
    return f"{'previous' if h.previous else 'current'} log of {h.container}, line {h.line_no}"


def _log_commands(pod: Obj, hits: list[Hit]) -> list[str]:
    ns, name = _ns_name(pod)
    seen: list[str] = []
    for h in hits:
        cmd = f"kubectl logs -n {ns} {name} -c {h.container}" + \
            (" --previous" if h.previous else "")
        if cmd not in seen:
            seen.append(cmd)
    return [*seen[:2], f"kubectl describe pod -n {ns} {name}"]


def _crashing(ctx: Context, pod: Obj, container: str) -> bool:
    for c in ctx.containers(pod):
        if c.name == container:
            return bool(c.waiting.get("reason")) or (c.restarts > 0 and not _healthy(c))
    return False


def _first_seen(ctx: Context, scan_: PodScan, hits: list[Hit],
                memo: str | None = None) -> datetime | None:
    """The first matching line's own timestamp; else the start of the run that
    logged it, or the crash loop's first BackOff event. `memo` names `hits` as
    one of the scan's fixed lists, so the earliest stamp is kept with it."""
    stamped = scan_.derived(f"stamped:{memo}", lambda: _earliest_time(hits)) \
        if memo else _earliest_time(hits)
    if stamped is not None:
        return stamped
    runs = earliest(*(scan_.runs.get((h.container, h.previous)) for h in hits))
    backoff = event_first_seen(ctx.events(scan_.pod, reason="BackOff")) \
        if any(h.previous for h in hits) else None
    return earliest(runs, backoff)


def _earliest_time(hits: list[Hit]) -> datetime | None:
    """`earliest` of the hits' times (a datetime is never false)."""
    return min(filter(None, map(_TIME, hits)), default=None)


def _pick(hits: list[Hit]) -> list[Hit]:
    """Previous-log hits first (they preceded a crash), in log order."""
    prev = list(compress(hits, map(_PREVIOUS, hits)))
    return prev or hits


def _count(hits: list[Hit], h: Hit) -> str:
    n = list(map(_RUN, hits)).count((h.previous, h.container))
    return f"{n} time(s) in the {'previous' if h.previous else 'current'} log of {h.container}"


def _sa(user: str) -> tuple[str, str] | None:
    parts = user.split(":")
    if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"]:
        return parts[2], parts[3]
    return None


def _dns_name(value: str) -> str:
    return re.sub(r"[^a-z0-9.-]+", "-", value.lower()).strip("-.")[:63] or "access"


def _resolve(ctx: Context, pod_ns: str, host: str) -> tuple[Obj | None, str, str, bool]:
    """Map a host to the in-cluster Service it names: `svc`, `svc.ns`,
    `svc.ns.svc[.cluster.local]` or a ClusterIP. Returns (service, ns, name,
    is_cluster_name)."""
    host = host.lower().rstrip(".")
    if re.fullmatch(r"\d{1,3}(?:\.\d{1,3}){3}", host):
        s = ctx.shared(("logs", "services-by-ip"), lambda: _services_by_ip(ctx)).get(host)
        if s is not None:
            return s, str(md(s).get("namespace") or ""), str(md(s).get("name") or ""), True
        return None, "", host, False
    parts = host.split(".")
    if len(parts) == 1:
        ns, name = pod_ns, parts[0]
    elif (len(parts) >= 3 and parts[2] == "svc") or \
            (len(parts) == 2 and parts[1] in ctx.state.namespaces):
        ns, name = parts[1], parts[0]
    else:
        return None, "", host, False
    return ctx.get("Service", ns, name), ns, name, True


def _services_by_ip(ctx: Context) -> dict[str, Obj]:
    """ClusterIP (any of clusterIPs) -> the first Service in the state that has it."""
    out: dict[str, Obj] = {}
    for s in ctx.state.kind("Service"):
        spec = s.get("spec") if isinstance(s, dict) else None
        if not isinstance(spec, dict):
            continue
        ips = spec.get("clusterIPs")
        for ip in (spec.get("clusterIP"), *(ips if isinstance(ips, list) else ())):
            if isinstance(ip, str) and ip not in out:
                out[ip] = s
    return out


def _env_fix(ctx: Context, pod: Obj, container: str, bad: str, good: str) -> Action | None:
    """Replace `bad` by `good` in the env values of the workload's template, if
    the host comes from there."""
    owner = ctx.owner_object(pod)
    if owner is None:
        return None
    word = re.compile(r"(?<![\w.-])" + re.escape(bad) + r"(?![\w-])")
    base = pod_template_path(str(owner.get("kind") or ""))
    patch: list[dict[str, Any]] = []
    inverse: list[dict[str, Any]] = []
    for i, c in enumerate(_list(pod_spec_of(owner).get("containers"))):
        if _dict(c).get("name") != container:
            continue
        for j, e in enumerate(_list(_dict(c).get("env"))):
            value = _dict(e).get("value")
            if isinstance(value, str) and word.search(value):
                path = pointer(*base, "containers", i, "env", j, "value")
                patch.append({"op": "replace", "path": path, "value": word.sub(good, value)})
                inverse.insert(0, {"op": "replace", "path": path, "value": value})
    if not patch:
        return None
    t = target_of(owner)
    return Action("patch", t, f"Use host {good} instead of {bad} in the env of container "
                              f"{container} of {t['kind']}/{t['name']}", "medium", patch,
                  inverse,
                  [f"kubectl rollout status {t['kind'].lower()}/{t['name']} -n "
                   f"{t['namespace']} --timeout=300s succeeds",
                   f"no new '{bad}' resolution errors in kubectl logs"])


# -- rbac-forbidden ---------------------------------------------------------------------

def _rbac_commands(d: dict[str, Any], verbs: list[str], pod_ns: str) -> tuple[list[str], str]:
    res = d["resource"] + (f".{d['group']}" if d["group"] else "")
    sa = _sa(d["user"])
    who = f"--serviceaccount={sa[0]}:{sa[1]}" if sa else f"--user={d['user']}"
    base = sa[1] if sa else d["user"].split(":")[-1]
    role = _dns_name(f"{base}-{d['resource'].replace('/', '-')}-{verbs[0]}"
                     if len(verbs) == 1 else f"{base}-{d['resource'].replace('/', '-')}")
    verb_arg = ",".join(verbs)
    ns = d["namespace"] or pod_ns
    as_ = f"--as={d['user']}"
    if d["cluster"]:
        return [f"kubectl auth can-i {verbs[0]} {res} {as_}",
                f"kubectl get clusterrolebindings -o wide | grep {base}",
                f"kubectl create clusterrole {role} --verb={verb_arg} --resource={res}",
                f"kubectl create clusterrolebinding {role} --clusterrole={role} {who}"], role
    return [f"kubectl auth can-i {verbs[0]} {res} -n {ns} {as_}",
            f"kubectl get rolebindings -n {ns} -o wide",
            f"kubectl create role {role} -n {ns} --verb={verb_arg} --resource={res}",
            f"kubectl create rolebinding {role} -n {ns} --role={role} {who}"], role


def _bound_roles(ctx: Context, d: dict[str, Any]) -> list[Evidence]:
    """Roles already bound to the service account, with what they grant: the
    classic bug is a Role that grants the wrong resource or verb."""
    sa = _sa(d["user"])
    if not sa:
        return []
    out = []
    for rb in ctx.in_namespace("RoleBinding", sa[0]):
        subjects = [_dict(s) for s in _list(rb.get("subjects"))]
        if not any(s.get("kind") == "ServiceAccount" and s.get("name") == sa[1]
                   and (s.get("namespace") or sa[0]) == sa[0] for s in subjects):
            continue
        ref = _dict(rb.get("roleRef"))
        role = ctx.get("Role", sa[0], str(ref.get("name") or "")) if ref.get("kind") == "Role" \
            else ctx.get("ClusterRole", None, str(ref.get("name") or ""))
        grants = "; ".join(
            f"{','.join(map(str, _list(_dict(r).get('verbs'))))} on "
            f"{','.join(map(str, _list(_dict(r).get('resources'))))}"
            for r in _list((role or {}).get("rules"))) or "nothing (role not found)"
        out.append(Evidence("object", f"RoleBinding {sa[0]}/{md(rb).get('name')} binds "
                                      f"{ref.get('kind')} {ref.get('name')} granting: {grants}",
                            f"RoleBinding/{sa[0]}/{md(rb).get('name')}"))
    return out


@rule("rbac-forbidden", family=FAMILY, title="API calls denied by RBAC", severity="critical",
      docs=DOCS_RBAC, rank=25, supersedes=("app-error",))
def rbac_forbidden(ctx: Context) -> Iterator[Finding]:
    """The app's service account lacks a permission; the API server's message names
    exactly which (user, verb, resource, group, namespace), so the fix is exact."""
    for s in scan(ctx):
        hits = s.hits.get("rbac")
        if hits:
            yield _rbac_finding(ctx, s, _pick(hits))


def _rbac_finding(ctx: Context, s: PodScan, hits: list[Hit]) -> Finding:
    ns, name = _ns_name(s.pod)
    h = hits[-1]
    d = h.data
    same = [x for x in hits if (x.data["user"], x.data["resource"], x.data["group"],
                                x.data["namespace"]) ==
            (d["user"], d["resource"], d["group"], d["namespace"])]
    verbs = sorted({x.data["verb"] for x in same})
    commands, role = _rbac_commands(d, verbs, ns)
    group = d["group"] or '"" (core)'
    scope = "cluster-wide" if d["cluster"] else f"in namespace {d['namespace']}"
    evidence = [x.evidence() for x in [hits[0], h][: 1 if hits[0] is h else 2]]
    evidence.append(Evidence("log", f"{_count(hits, h)}: user {d['user']} cannot "
                                    f"{','.join(verbs)} {d['resource']} (API group {group}) "
                                    f"{scope}", _where(h)))
    evidence += _bound_roles(ctx, d)
    summary = (f"Pod {ns}/{name} is denied by RBAC: {d['user']} cannot {','.join(verbs)} "
               f"{d['resource']} {scope}; bind a {'ClusterRole' if d['cluster'] else 'Role'} "
               f"granting it.")
    kind = "ClusterRole" if d["cluster"] else "Role"
    fix = (f"Create {kind} {role} granting {','.join(verbs)} on {d['resource']} (API group "
           f"{group}) and bind it to {d['user']} with a "
           f"{'ClusterRoleBinding' if d['cluster'] else 'RoleBinding'} (or add the rule to "
           f"the Role already bound), then restart the pod if it does not retry.")
    target = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
              "metadata": {"name": role, **({} if d["cluster"] else
                                            {"namespace": d["namespace"] or ns})}}
    action = Action("manual", target_of(target),
                    f"Create {kind} {role} ({','.join(verbs)} {d['resource']}) and bind it "
                    f"to {d['user']}", "critical", [], [],
                    [f"{commands[0]} answers yes",
                     f"no new 'forbidden' lines in kubectl logs -n {ns} {name}"])
    return ctx.finding("rbac-forbidden", s.pod, summary, evidence,
                       Remediation(fix, tuple(_log_commands(s.pod, [h]) + commands), action),
                       confidence=0.95, first_seen=_first_seen(ctx, s, hits))


# -- dns-failure ------------------------------------------------------------------------

def _coredns_evidence(ctx: Context) -> list[Evidence]:
    pods = [p for p in ctx.in_namespace("Pod", "kube-system")
            if _dict(md(p).get("labels")).get("k8s-app") == "kube-dns"]
    if not pods:
        return []
    ready = [p for p in pods if any(_dict(c).get("type") == "Ready" and
                                    _dict(c).get("status") == "True"
                                    for c in _list(_dict(p.get("status")).get("conditions")))]
    return [Evidence("object", f"CoreDNS: {len(ready)}/{len(pods)} pod(s) Ready",
                     "pods kube-system -l k8s-app=kube-dns")]


@rule("dns-failure", family=FAMILY, title="DNS name does not resolve", severity="critical",
      docs=DOCS_DNS, rank=25, supersedes=("app-error",))
def dns_failure(ctx: Context) -> Iterator[Finding]:
    """A name that does not resolve is either a wrong name (no such Service) or
    broken cluster DNS; which one follows from whether the Service exists."""
    for s in scan(ctx):
        hits = s.hits.get("dns")
        if hits:
            yield _dns_finding(ctx, s, _pick(hits))


def _dns_finding(ctx: Context, s: PodScan, hits: list[Hit]) -> Finding:
    ns, name = _ns_name(s.pod)
    named = [h for h in hits if h.data.get("host")]
    h = (named or hits)[-1]
    host = h.data.get("host")
    evidence = [h.evidence()]
    if hits[0] is not h:
        evidence.insert(0, hits[0].evidence())
    evidence.append(Evidence("log", _count(hits, h), _where(h)))
    commands = _log_commands(s.pod, [h])
    action = None
    if not host:
        verdict = "the log does not name the host"
        fix = "Find which host the app resolves (its config/env) and check it exists."
    else:
        svc, sns, sname, cluster = _resolve(ctx, ns, host)
        commands += [f"kubectl get service -n {sns or ns}",
                     f"kubectl run dnscheck -n {ns} --rm -it --restart=Never "
                     f"--image=busybox:1.36 -- nslookup {host}"]
        if svc is not None:
            verdict = (f"Service {sns}/{sname} exists (ClusterIP "
                       f"{_dict(svc.get('spec')).get('clusterIP')}), so cluster DNS is failing")
            evidence.append(Evidence("object", f"Service {sns}/{sname} exists",
                                     f"Service/{sns}/{sname}"))
            evidence += _coredns_evidence(ctx)
            commands += ["kubectl get pods -n kube-system -l k8s-app=kube-dns",
                         "kubectl logs -n kube-system -l k8s-app=kube-dns --tail=50"]
            fix = (f"{host} names an existing Service; check CoreDNS (pods, logs) and the "
                   "pod's dnsPolicy/dnsConfig.")
        elif cluster:
            names = [str(md(x).get("name")) for x in ctx.in_namespace("Service", sns)]
            close = get_close_matches(sname, names, n=1, cutoff=0.6)
            verdict = f"no Service named {sname} exists in namespace {sns}" + \
                (f" (did you mean {close[0]}?)" if close else "")
            evidence.append(Evidence("object", f"no Service {sns}/{sname}; Services in {sns}: "
                                               f"{', '.join(sorted(names)[:10]) or 'none'}",
                                     f"Service/{sns}/{sname}"))
            fix = ("Point the app at an existing Service"
                   + (f" ({close[0]})" if close else "") + f" or create Service {sns}/{sname}.")
            if close:
                good = host.replace(sname, close[0], 1)
                action = _env_fix(ctx, s.pod, h.container, host, good)
        else:
            verdict = f"{host} is an external name"
            evidence += _coredns_evidence(ctx)
            fix = (f"Check that {host} exists and that the cluster can resolve external "
                   "names (CoreDNS forward/upstream, egress NetworkPolicy).")
    timeout = " (the DNS server did not answer)" if h.data.get("timeout") else ""
    summary = (f"Pod {ns}/{name} cannot resolve {host or 'a host name'}{timeout}: {verdict}.")
    crash = any(x.previous for x in hits) or _crashing(ctx, s.pod, h.container)
    return ctx.finding("dns-failure", s.pod, summary, evidence,
                       Remediation(fix, tuple(commands), action),
                       confidence=0.9 if host else 0.75, first_seen=_first_seen(ctx, s, hits),
                       severity="critical" if crash else "warning")


# -- dependency-unreachable --------------------------------------------------------------

def _target_key(data: dict[str, Any]) -> tuple[str, int | None]:
    return str(data.get("host") or ""), data.get("port")


@rule("dependency-unreachable", family=FAMILY, title="Dependency unreachable",
      severity="critical", docs=DOCS_SVC, rank=25, supersedes=("app-error",))
def dependency_unreachable(ctx: Context) -> Iterator[Finding]:
    """"Connection refused" to host:port is the cause of the crash it precedes;
    when the host is a Service, its endpoint state usually says why."""
    for s in scan(ctx):
        hits = s.hits.get("conn")
        if hits:
            yield _dependency_finding(ctx, s, _pick(hits))


def _dependency_target(hits: list[Hit]) -> tuple[str, int | None, list[Hit]]:
    """The most reported (named) host:port and its hits. The hits of a repeated line
    share one parse (`_classify_stamped`): they are counted by parse, and its key is
    worked out once."""
    datas = list(map(_DATA, hits))
    ids = list(map(id, datas))  # of parses alive in `hits`
    key_of = {i: _target_key(d) for i, d in dict(zip(ids, datas, strict=True)).items()}
    counts: dict[tuple[str, int | None], int] = {}  # keys in order of first hit
    for i, n in Counter(ids).items():
        k = key_of[i]
        counts[k] = counts.get(k, 0) + n
    (host, port), _n = max(counts.items(), key=lambda kv: (kv[0][0] != "", kv[1]))
    if len(counts) == 1:
        return host, port, list(hits)
    wanted = {i for i, k in key_of.items() if k == (host, port)}
    return host, port, [x for x, i in zip(hits, ids, strict=True) if i in wanted]


def _dependency_finding(ctx: Context, s: PodScan, hits: list[Hit]) -> Finding:
    ns, name = _ns_name(s.pod)
    host, port, same = s.derived("conn-target", lambda: _dependency_target(hits))
    h = same[-1]
    what = h.data["what"]
    target = f"{host}:{port}" if host and port else host or "a dependency"
    evidence = [same[0].evidence()] + ([h.evidence()] if same[0] is not h else [])
    evidence.append(Evidence("log", f"{what} to {target}: {_count(same, h)}", _where(h)))
    commands = _log_commands(s.pod, [h])
    action = None
    link, broken = "", False
    if host and host.lower() in _LOCAL:
        link = f"{host} is the pod itself: the process or sidecar expected on it is not up"
    elif host:
        svc, sns, sname, _cluster = _resolve(ctx, ns, host)
        if svc is not None:
            b = backends(ctx, svc)
            link = describe_backends(ctx, svc, b)
            broken = not b.has_ready
            ports = [_dict(p).get("port") for p in _list(_dict(svc.get("spec")).get("ports"))]
            if port and ports and port not in ports:
                link += f"; it exposes port(s) {', '.join(map(str, ports))}, not {port}"
                broken = True
            evidence.append(Evidence("object", link, f"Service/{sns}/{sname}"))
            commands += [f"kubectl get endpoints -n {sns} {sname}",
                         f"kubectl describe service -n {sns} {sname}"]
            if broken and not b.pods:
                _c, fx = selector_fix(ctx, svc)
                action = fx.action if fx else None
    if host:
        probe = f"nc -zv -w 3 {host} {port}" if port else f"ping -c 1 {host}"
        commands.append(f"kubectl run netcheck -n {ns} --rm -it --restart=Never "
                        f"--image=busybox:1.36 -- {probe}")
    summary = f"Pod {ns}/{name} cannot reach {target} ({what})"
    summary += f": {link}." if link else "; check that the dependency is running and listening."
    fix = (f"Fix the dependency behind {target} first ({link}); the app recovers once it "
           "can connect." if link else
           f"Make {target} reachable: start the dependency, check its Service and port, and "
           "any NetworkPolicy between them.")
    crash = any(map(_PREVIOUS, same)) or _crashing(ctx, s.pod, h.container)
    refused = what == "connection refused"
    confidence = (0.9 if broken else 0.85) if refused else 0.7
    return ctx.finding("dependency-unreachable", s.pod, summary, evidence,
                       Remediation(fix, tuple(commands), action),
                       confidence=confidence, first_seen=_first_seen(ctx, s, same, "conn"),
                       severity="critical" if crash or broken else "warning")


# -- app-error ---------------------------------------------------------------------------

def _decisive(hits: list[Hit]) -> Hit:
    """The strongest signal, latest among equals: the last traceback line of the
    run that crashed beats a stray 'Exception' earlier in the log."""
    return max(hits, key=lambda x: (x.data["weight"], x.previous, x.line_no))


@rule("app-error", family=FAMILY, title="Application error in logs", severity="warning",
      docs=DOCS_APP, rank=35)
def app_error(ctx: Context) -> Iterator[Finding]:
    """A traceback, panic or fatal line is the application's own account of why it
    failed: quote the decisive line, since the fix is in code or config."""
    for s in scan(ctx):
        hits = s.hits.get("app")
        if not hits:
            continue
        h = _decisive(hits)
        crashed = h.previous or _crashing(ctx, s.pod, h.container)
        if h.data["weight"] < 4 and not crashed:
            continue  # a healthy app logging a handled error is not a finding
        yield _app_finding(ctx, s, hits, h, crashed)


def _app_finding(ctx: Context, s: PodScan, hits: list[Hit], h: Hit, crashed: bool) -> Finding:
    ns, name = _ns_name(s.pod)
    d = h.data
    quote = f"{d['cls']}: {d['msg']}".strip(": ") if d["cls"] else d["msg"]
    evidence = [h.evidence(),
                Evidence("log", f"{d['what']}: {quote[:300]}", _where(h))]
    same = [x for x in hits if x.data.get("cls") == d.get("cls") and x.line == h.line]
    if len(same) > 1:
        evidence.append(Evidence("log", f"same line {_count(same, h)}", _where(h)))
    where = "previous" if h.previous else "current"
    summary = (f"Pod {ns}/{name} container {h.container} logs a {d['what']} "
               f"({quote[:160]}) at line {h.line_no} of its {where} log"
               + ("; it is what the container died on." if crashed and h.previous else "."))
    commands = [f"kubectl logs -n {ns} {name} -c {h.container}"
                + (" --previous" if h.previous else "") + f" | sed -n "
                f"'{max(1, h.line_no - 30)},{h.line_no + 5}p'",
                *_log_commands(s.pod, [h])]
    fix = (f"Fix the application error quoted from the {where} log of {h.container} "
           f"(line {h.line_no}); the stack above that line shows where it is raised.")
    confidence = {5: 0.7, 4: 0.65, 3: 0.55}.get(d["weight"], 0.45)
    if not crashed:
        confidence -= 0.1
    return ctx.finding("app-error", s.pod, summary, evidence, Remediation(fix, tuple(commands)),
                       confidence=confidence, first_seen=_first_seen(ctx, s, [h]),
                       severity="critical" if crashed and h.previous else "warning")
