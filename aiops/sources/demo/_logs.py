"""Container logs in each program's own format.

The dump holds what `kubectl logs` returns: for a long-running container only
the tail after the runtime's last log rotation (so most start mid-stream),
for a crash-looping one the output of its last run. Timestamps follow the
story's clock; formats are those of nginx, uvicorn, Python logging, celery,
postgres, redis, CoreDNS, etcd (zap JSON) and klog.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta

UA_BROWSER = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/142.0.0.0 Safari/537.36")
UA_FIREFOX = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:145.0) Gecko/20100101 Firefox/145.0"


def join(lines: list[str]) -> str:
    return "".join(f"{line}\n" for line in lines)


def ticks(rng: random.Random, start: datetime, end: datetime,
          mean_gap: float) -> Iterator[datetime]:
    """Random event times between start and end (exponential gaps)."""
    t = start
    while True:
        t += timedelta(seconds=rng.expovariate(1 / mean_gap))
        if t >= end:
            return
        yield t


def klog(t: datetime, level: str, src: str, msg: str, pid: int = 1) -> str:
    """A klog header line: I1123 07:41:02.123456       1 file.go:123] message."""
    return f"{level}{t:%m%d %H:%M:%S.%f} {pid:>7} {src}] {msg}"


def pylog(t: datetime, level: str, name: str, msg: str) -> str:
    return f"{t:%Y-%m-%d %H:%M:%S},{t.microsecond // 1000:03d} {level} [{name}] {msg}"


# -- web tier -------------------------------------------------------------------

def nginx_access(rng: random.Random, start: datetime, end: datetime, mean_gap: float) -> list[str]:
    """Port-forwarded browser traffic to the SPA, /api proxied to the backend."""
    pages = [("GET", "/", 200, 1876), ("GET", "/assets/index-4f9c2a1b.js", 200, 412873),
             ("GET", "/assets/index-9d3e77c0.css", 200, 38114), ("GET", "/favicon.ico", 200, 4286),
             ("GET", "/api/todos", 200, 2291), ("POST", "/api/todos", 201, 214),
             ("GET", "/api/chat/history", 200, 8830), ("PATCH", "/api/todos/118", 200, 219),
             ("GET", "/", 304, 0), ("GET", "/assets/index-4f9c2a1b.js", 304, 0)]
    out = []
    for t in ticks(rng, start, end, mean_gap):
        method, path, code, size = rng.choice(pages)
        ua = UA_BROWSER if rng.random() < 0.7 else UA_FIREFOX
        ref = "-" if path == "/" else "http://localhost:8080/"
        out.append(f'127.0.0.1 - - [{t:%d/%b/%Y:%H:%M:%S} +0000] "{method} {path} HTTP/1.1" '
                   f'{code} {size} "{ref}" "{ua}" "-"')
    return out


def backend_log(rng: random.Random, start: datetime, end: datetime, clients: list[str],
                cache_entries: int, max_entries: int | None = None) -> list[str]:
    """FastAPI under uvicorn with a timestamped logging config; probes are filtered out.

    The conversation cache grows without bound unless `max_entries` caps it."""
    routes = [("GET", "/api/todos", 200), ("POST", "/api/todos", 201),
              ("GET", "/api/chat/history", 200), ("PATCH", "/api/todos/118", 200),
              ("GET", "/api/todos?done=false", 200), ("DELETE", "/api/todos/97", 204)]
    out: list[tuple[datetime, str]] = []
    for t in ticks(rng, start, end, 95):
        method, path, code = rng.choice(routes)
        ip = f"{rng.choice(clients)}:{rng.randrange(32768, 60999)}"
        out.append((t, pylog(t, "INFO", "uvicorn.access",
                             f'{ip} - "{method} {path} HTTP/1.1" {code}')))
    t = start.replace(minute=(start.minute // 15) * 15, second=0, microsecond=0)
    while t < end:
        t += timedelta(minutes=15)
        if t >= end:
            break
        cache_entries += rng.randrange(380, 520)
        kept = cache_entries if max_entries is None else min(cache_entries, max_entries)
        out.append((t, pylog(t + timedelta(milliseconds=rng.randrange(5, 90)), "INFO",
                             "app.chat.cache",
                             f"conversation cache: {kept} entries, {cache_entries - kept} "
                             f"evicted (max_entries={max_entries})")))
    return [line for _, line in sorted(out)]



def chatbot_crash(t: datetime, redis_ip: str) -> list[str]:
    """The last run of the chatbot: startup, redis ping refused, traceback, exit 1."""
    sp = "/usr/local/lib/python3.12/site-packages"
    return [
        "INFO:     Started server process [1]",
        "INFO:     Waiting for application startup.",
        pylog(t + timedelta(milliseconds=640), "INFO", "chatbot.main",
              "connecting to redis at redis://todo-redis:6379/0"),
        "ERROR:    Traceback (most recent call last):",
        f'  File "{sp}/redis/asyncio/connection.py", line 275, in connect',
        "    await self.retry.call_with_retry(",
        f'  File "{sp}/redis/asyncio/retry.py", line 59, in call_with_retry',
        "    return await do()",
        "           ^^^^^^^^^^",
        f'  File "{sp}/redis/asyncio/connection.py", line 706, in _connect',
        "    reader, writer = await asyncio.open_connection(",
        "                     ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
        '  File "/usr/local/lib/python3.12/asyncio/streams.py", line 48, in open_connection',
        "    transport, _ = await loop.create_connection(",
        "                   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
        '  File "/usr/local/lib/python3.12/asyncio/base_events.py", line 1130, in '
        "create_connection",
        "    raise exceptions[0]",
        '  File "/usr/local/lib/python3.12/asyncio/base_events.py", line 1112, in '
        "create_connection",
        "    sock = await self._connect_sock(",
        "           ^^^^^^^^^^^^^^^^^^^^^^^^^",
        '  File "/usr/local/lib/python3.12/asyncio/selector_events.py", line 681, in '
        "_sock_connect_cb",
        "    raise OSError(err, f'Connect call failed {address}')",
        f"ConnectionRefusedError: [Errno 111] Connect call failed ('{redis_ip}', 6379)",
        "",
        "During handling of the above exception, another exception occurred:",
        "",
        "Traceback (most recent call last):",
        f'  File "{sp}/starlette/routing.py", line 693, in lifespan',
        "    async with self.lifespan_context(app) as maybe_state:",
        "               ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
        '  File "/usr/local/lib/python3.12/contextlib.py", line 210, in __aenter__',
        "    return await anext(self.gen)",
        "           ^^^^^^^^^^^^^^^^^^^^^",
        '  File "/app/chatbot/main.py", line 38, in lifespan',
        "    await app.state.redis.ping()",
        f'  File "{sp}/redis/asyncio/client.py", line 616, in execute_command',
        "    conn = self.connection or await pool.get_connection(command_name, **options)",
        "                              ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
        f'  File "{sp}/redis/asyncio/connection.py", line 1105, in ensure_connection',
        "    await connection.connect()",
        f'  File "{sp}/redis/asyncio/connection.py", line 283, in connect',
        "    raise ConnectionError(self._error_message(e))",
        "redis.exceptions.ConnectionError: Error 111 connecting to todo-redis:6379. "
        "Connection refused.",
        "",
        "ERROR:    Application startup failed. Exiting.",
    ]


def notifier_log(rng: random.Random, start: datetime, broke: datetime, end: datetime,
                 relay_ip: str) -> list[str]:
    """Go slog JSON: the readiness handler returns 503 once the SMTP relay stops answering."""
    out = []
    t = start
    while t < end:
        stamp = t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"
        if t < broke:
            if rng.random() < 0.15:
                out.append(f'{{"time":"{stamp}","level":"INFO","msg":"digest queue polled",'
                           f'"pending":0}}')
        else:
            out.append(f'{{"time":"{stamp}","level":"WARN","msg":"readiness check failed",'
                       f'"check":"smtp","relay":"smtp-relay.mail.svc.example.net:587",'
                       f'"error":"dial tcp {relay_ip}:587: i/o timeout","status":503,'
                       f'"duration_ms":{rng.randrange(2000, 2012)}}}')
        t += timedelta(seconds=10, milliseconds=rng.randrange(-40, 40))
    return _insert_sorted(out, broke, relay_ip)


def _insert_sorted(lines: list[str], broke: datetime, relay_ip: str) -> list[str]:
    stamp = broke.strftime("%Y-%m-%dT%H:%M:%S.") + "118Z"
    err = (f'{{"time":"{stamp}","level":"ERROR","msg":"smtp relay unreachable, marking not '
           f'ready","relay":"smtp-relay.mail.svc.example.net:587","error":"dial tcp '
           f'{relay_ip}:587: i/o timeout"}}')
    for i, line in enumerate(lines):
        if line[9:33] >= stamp:
            return [*lines[:i], err, *lines[i:]]
    return [*lines, err]


# -- data tier --------------------------------------------------------------------
def redis_startup(t: datetime) -> list[str]:
    def r(role: str, dt: float, msg: str) -> str:
        x = t + timedelta(seconds=dt)
        return f"1:{role} {x:%d %b %Y %H:%M:%S}.{x.microsecond // 1000:03d} {msg}"
    return [
        r("C", 0, "* oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo"),
        r("C", 0, "* Redis version=8.2.3, bits=64, commit=00000000, modified=1, pid=1, "
                  "just started"),
        r("C", 0, "* Configuration loaded"),
        r("M", 0.001, "* monotonic clock: POSIX clock_gettime"),
        r("M", 0.001, "* Running mode=standalone, port=6379."),
        r("M", 0.002, "* Server initialized"),
        r("M", 0.002, "* Creating AOF base file appendonly.aof.1.base.rdb on server start"),
        r("M", 0.003, "* Creating AOF incr file appendonly.aof.1.incr.aof on server start"),
        r("M", 0.003, "* Ready to accept connections tcp"),
    ]


def postgres_log(rng: random.Random, start: datetime, end: datetime,
                 auth_failures: list[datetime]) -> list[str]:
    """Checkpoints every five minutes, plus the backup user's failed logins."""
    out: list[tuple[datetime, str]] = []
    t = start.replace(second=0, microsecond=0)
    t += timedelta(minutes=(5 - t.minute % 5) % 5, seconds=44)
    while t < end:
        t += timedelta(milliseconds=rng.randrange(1, 999))
        if rng.random() < 0.55:
            w = rng.randrange(3, 48)
            secs = w * 0.1 + rng.random()
            t2 = t + timedelta(seconds=secs + 0.01)
            out.append((t, _pg(t, 27, "LOG", "checkpoint starting: time")))
            out.append((t2, _pg(t2, 27, "LOG",
                                f"checkpoint complete: wrote {w} buffers ({w / 163.84:.1f}%); "
                                "0 WAL file(s) added, 0 removed, 0 recycled; "
                                f"write={secs:.3f} s, sync=0.004 s, total={secs + 0.01:.3f} s; "
                                f"sync files={min(w, 9)}, longest=0.002 s, average=0.001 s; "
                                f"distance={w * 8} kB, estimate={w * 8 + 12} kB; "
                                "lsn=0/1E93C8A8, redo lsn=0/1E93C870")))
        t += timedelta(minutes=5)
    for i, f in enumerate(auth_failures):
        pid = 18211 + i * 3
        out.append((f, _pg(f, pid, "FATAL",
                           'password authentication failed for user "backup"')))
        out.append((f, _pg(f, pid, "DETAIL",
                           'Connection matched file "/var/lib/postgresql/data/pg_hba.conf" '
                           'line 128: "host all all all scram-sha-256"')))
    return [line for _, line in sorted(out, key=lambda x: x[0])]


def _pg(t: datetime, pid: int, level: str, msg: str) -> str:
    """postgres' default log_line_prefix '%m [%p] ' (milliseconds, UTC)."""
    return f"{t:%Y-%m-%d %H:%M:%S}.{t.microsecond // 1000:03d} UTC [{pid}] {level}:  {msg}"


def celery_banner(t: datetime, pod: str) -> list[str]:
    return [
        "",
        f" -------------- celery@{pod} v5.5.3 (immunity)",
        "--- ***** ----- ",
        f"-- ******* ---- Linux-6.8.0-87-generic-x86_64-with-glibc2.36 {t:%Y-%m-%d %H:%M:%S}",
        "- *** --- * --- ",
        "- ** ---------- [config]",
        "- ** ---------- .> app:         todo_worker:0x7f1d3c2b9e50",
        "- ** ---------- .> transport:   redis://todo-redis-headless:6379/0",
        "- ** ---------- .> results:     disabled://",
        "- *** --- * --- .> concurrency: 1 (solo)",
        "-- ******* ---- .> task events: OFF (enable -E to monitor tasks in this worker)",
        "--- ***** ----- ",
        " -------------- [queues]",
        "                .> celery           exchange=celery(direct) key=celery",
        "                ",
        "",
        "[tasks]",
        "  . todo_worker.tasks.embed_todos",
        "  . todo_worker.tasks.reindex_all",
        "  . todo_worker.tasks.send_digest",
        "",
    ]


def celery_oom_run(rng: random.Random, start: datetime, end: datetime, pod: str,
                   task_id: str) -> list[str]:
    """A worker run that takes the redelivered reindex task and is killed mid-batch."""
    def c(t: datetime, who: str, msg: str) -> str:
        return f"[{t:%Y-%m-%d %H:%M:%S},{t.microsecond // 1000:03d}: {who}] {msg}"
    t = start + timedelta(seconds=2.4)
    lines = celery_banner(start, pod)
    lines += [c(t, "INFO/MainProcess", "Connected to redis://todo-redis-headless:6379/0"),
              c(t + timedelta(milliseconds=9), "INFO/MainProcess", f"celery@{pod} ready."),
              c(t + timedelta(milliseconds=31), "INFO/MainProcess",
                f"Task todo_worker.tasks.reindex_all[{task_id}] received")]
    total, loaded, step = 184_220, 0, 12_000
    span = (end - t).total_seconds() - 1
    n = total // step
    for i in range(1, n + 1):
        loaded += step
        at = t + timedelta(seconds=span * i / (n + 1.3))
        if at >= end:
            break
        rss = 61 + int(loaded / total * 190)
        lines.append(c(at, "INFO/MainProcess",
                       f"reindex_all: loaded {loaded}/{total} todos into memory "
                       f"(batch {i}, rss={rss} MiB)"))
    return lines


# -- kube-system ---------------------------------------------------------------------
def coredns_log(rng: random.Random, start: datetime, end: datetime, client_ips: list[str],
                names: list[str]) -> list[str]:
    lines = [
        ".:53",
        "[INFO] plugin/reload: Running configuration SHA512 = 4c1a7d1bd8c5a3c7e12c09ef4d34e3a8"
        "6ab4d3c9a3e5b2f4d6f70c1b8f3d2e5c7a9b1d3f5e7092b4c6d8e0f1a3c5e7f9b2d4f6a8c0e2d4b6f8a0c2",
        "CoreDNS-1.12.0",
        "linux/amd64, go1.23.3, 51e11f1",
        f"[INFO] 127.0.0.1:{rng.randrange(30000, 60000)} - {rng.randrange(1, 65535)} "
        f'"HINFO IN {rng.getrandbits(63)}.{rng.getrandbits(62)}. udp 57 false 512" NXDOMAIN '
        "qr,rd,ra 57 0.012274712s",
    ]
    for _ in ticks(rng, start, end, 40):
        ip = rng.choice(client_ips)
        name = rng.choice(names)
        qid = rng.randrange(1, 65535)
        kind = "AAAA" if rng.random() < 0.5 else "A"
        if name.endswith(".cluster.local."):
            rc, size = ("NOERROR", 106) if kind == "A" else ("NOERROR", 160)
            flags = "qr,aa,rd"
        else:
            rc, size, flags = "NOERROR", 124, "qr,rd,ra"
        lines.append(f'[INFO] {ip}:{rng.randrange(32768, 60999)} - {qid} "{kind} IN {name} udp '
                     f'{len(name) + 18} false 512" {rc} {flags} {size} '
                     f"{rng.uniform(0.00005, 0.0009):.6f}s")
    return lines


def etcd_log(rng: random.Random, start: datetime, end: datetime, revision: int) -> list[str]:
    """zap JSON: the scheduled compaction every five minutes."""
    out = []
    t = start.replace(second=0, microsecond=0) + timedelta(minutes=5 - start.minute % 5,
                                                           seconds=38)
    rev = revision - int((end - t).total_seconds() * 0.61)
    while t < end:
        stamp = f"{t:%Y-%m-%dT%H:%M:%S}.{t.microsecond:06d}Z"
        out.append(f'{{"level":"info","ts":"{stamp}","caller":"mvcc/index.go:214",'
                   f'"msg":"compact tree index","revision":{rev}}}')
        took = rng.uniform(2.1, 6.9)
        t2 = t + timedelta(milliseconds=took + 1)
        stamp2 = f"{t2:%Y-%m-%dT%H:%M:%S}.{t2.microsecond:06d}Z"
        out.append(f'{{"level":"info","ts":"{stamp2}","caller":"mvcc/kvstore_compaction.go:72",'
                   f'"msg":"finished scheduled compaction","compact-revision":{rev},'
                   f'"took":"{took:.6f}ms","hash":{rng.getrandbits(32)},'
                   f'"current-db-size-bytes":{rng.randrange(7_800_000, 8_400_000)},'
                   f'"current-db-size":"8.1 MB","current-db-size-in-use-bytes":'
                   f'{rng.randrange(3_100_000, 3_600_000)},"current-db-size-in-use":"3.3 MB"}}')
        t += timedelta(minutes=5)
        rev += int(300 * 0.61)
    return out


def klog_lines(entries: list[tuple[datetime, str, str, str]]) -> list[str]:
    return [klog(t, lvl, src, msg) for t, lvl, src, msg in sorted(entries)]


# -- the same programs when nothing is wrong (benchmark copies, `broken_every`) ---------------
def chatbot_serving(rng: random.Random, start: datetime, end: datetime,
                    clients: list[str]) -> list[str]:
    """uvicorn access lines of a chatbot that reaches redis and answers its clients."""
    routes = [("POST", "/chat", "200 OK"), ("GET", "/chat/history", "200 OK"),
              ("POST", "/chat/summarize", "200 OK"), ("GET", "/healthz", "200 OK")]
    out = []
    for t in ticks(rng, start, end, 62):
        method, path, status = rng.choice(routes)
        if path == "/chat" and rng.random() < 0.3:
            out.append(pylog(t - timedelta(milliseconds=rng.randrange(300, 2400)), "INFO",
                             "chatbot.llm", f"completion ok: model=gpt-4o-mini "
                             f"tokens={rng.randrange(120, 900)} "
                             f"latency_ms={rng.randrange(300, 2400)}"))
        ip = f"{rng.choice(clients)}:{rng.randrange(32768, 60999)}"
        out.append(f'INFO:     {ip} - "{method} {path} HTTP/1.1" {status}')
    return out


def celery_steady(rng: random.Random, start: datetime, end: datetime, pod: str) -> list[str]:
    """A worker that keeps up: digests and embedding batches received and succeeded."""
    def c(t: datetime, who: str, msg: str) -> str:
        return f"[{t:%Y-%m-%d %H:%M:%S},{t.microsecond // 1000:03d}: {who}] {msg}"
    out = []
    for t in ticks(rng, start, end, 95):
        task = str(rng.getrandbits(64))
        name = rng.choice(("send_digest", "embed_todos", "embed_todos"))
        took = rng.uniform(0.05, 1.8)
        out.append(c(t, "INFO/MainProcess",
                     f"Task todo_worker.tasks.{name}[{task}] received"))
        out.append(c(t + timedelta(seconds=took), "INFO/MainProcess",
                     f"Task todo_worker.tasks.{name}[{task}] succeeded in {took:.3f}s: None"))
    return out


def notifier_steady(rng: random.Random, start: datetime, end: datetime) -> list[str]:
    """Go slog JSON of a notifier whose relay answers: one line per readiness check."""
    out = []
    t = start
    while t < end:
        stamp = t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"
        if rng.random() < 0.15:
            out.append(f'{{"time":"{stamp}","level":"INFO","msg":"digest queue polled",'
                       f'"pending":0}}')
        out.append(f'{{"time":"{stamp}","level":"INFO","msg":"readiness check passed",'
                   f'"check":"smtp","relay":"smtp-relay.mail.svc.example.net:587",'
                   f'"status":200,"duration_ms":{rng.randrange(8, 40)}}}')
        t += timedelta(seconds=10, milliseconds=rng.randrange(-40, 40))
    return out


def embeddings_serving(rng: random.Random, started: datetime, end: datetime,
                       clients: list[str]) -> list[str]:
    """The embeddings server: model load, then batches served."""
    head = [
        "INFO:     Started server process [1]",
        "INFO:     Waiting for application startup.",
        pylog(started + timedelta(seconds=2), "INFO", "embeddings.model",
              "loading bge-large-en-v1.5 (335M parameters) on cpu"),
        pylog(started + timedelta(seconds=19), "INFO", "embeddings.model",
              "model loaded in 17.2s, max_batch=64"),
        "INFO:     Application startup complete.",
        "INFO:     Uvicorn running on http://0.0.0.0:8002 (Press CTRL+C to quit)",
    ]
    out = []
    for t in ticks(rng, end - timedelta(minutes=50), end, 80):
        n = rng.randrange(1, 65)
        out.append(pylog(t, "INFO", "embeddings.api",
                         f"embedded batch of {n} texts in {rng.randrange(40, 900)} ms"))
        out.append(f'INFO:     {rng.choice(clients)}:{rng.randrange(32768, 60999)} - '
                   f'"POST /embed HTTP/1.1" 200 OK')
    return head + out
