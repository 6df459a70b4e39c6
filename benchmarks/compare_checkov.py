"""Our verdicts against checkov's, check by check, on the same manifests.

For every check of ours that names checkov equivalents (Refs.checkov), both
tools judge the same resources (kind/namespace/name); the script prints, per
checkov id, how many resources both judged, how many verdicts agree, and each
disagreement. checkov stays out of our dependencies: it runs from its own
virtualenv (benchmarks/.out/checkov-venv, created on first use with pip, or
the executable given with --checkov).

Run: .venv/bin/python benchmarks/compare_checkov.py [MANIFEST_DIR ...] [--json OUT]
With no directory, the demo cluster's objects are exported as manifests and
compared.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import venv
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _cluster import OUT

from aiops.security import audit, load_checks, load_manifests
from aiops.security.manifests import as_manifests, write_manifests
from aiops.sources import open_source

Key = tuple[str, str, str]  # kind, namespace, name


def checkov_executable(given: str | None) -> Path:
    if given:
        return Path(given)
    found = shutil.which("checkov")
    if found:
        return Path(found)
    env = OUT / "checkov-venv"
    exe = env / "bin" / "checkov"
    if not exe.exists():
        print(f"installing checkov into {env} (once) ...", flush=True)
        venv.create(env, with_pip=True)
        subprocess.run([str(env / "bin" / "pip"), "install", "-q", "checkov"], check=True)
    return exe


def run_checkov(exe: Path, directory: Path) -> dict[str, dict[Key, bool]]:
    """checkov id -> resource -> passed."""
    with tempfile.TemporaryDirectory() as tmp:
        # checkov skips every file under a directory whose name starts with a dot
        # (benchmarks/.out): give it a copy
        copy = Path(tmp) / "manifests"
        shutil.copytree(directory, copy)
        proc = subprocess.run([str(exe), "-d", str(copy), "--framework", "kubernetes",
                               "-o", "json", "--compact", "--soft-fail",
                               "--skip-download"], capture_output=True, text=True,
                              check=False)
    if not proc.stdout.strip():
        raise SystemExit(f"checkov printed nothing: {proc.stderr[-2000:]}")
    data = json.loads(proc.stdout)
    runs = data if isinstance(data, list) else [data]
    out: dict[str, dict[Key, bool]] = defaultdict(dict)
    for run in runs:
        if run.get("check_type") not in (None, "kubernetes"):
            continue
        results = run.get("results") or {}
        for passed, items in ((True, results.get("passed_checks") or []),
                              (False, results.get("failed_checks") or [])):
            for item in items:
                kind, _, rest = item["resource"].partition(".")
                ns, _, name = rest.partition(".")
                key = (kind, ns or "default", name)
                # a resource failing on any of its containers fails
                out[item["check_id"]][key] = out[item["check_id"]].get(key, True) and passed
    return out


def run_ours(directory: Path) -> tuple[dict[str, dict[Key, bool]], dict[str, list[str]]]:
    """checkov id -> resource -> passed, from our checks naming that id."""
    state, origin = load_manifests(directory)
    report = audit(state, origin=origin)
    verdicts: dict[str, dict[Key, bool]] = defaultdict(dict)
    ours: dict[str, list[str]] = defaultdict(list)
    for check in load_checks().values():
        for cid in check.refs.checkov:
            ours[cid].append(check.id)
    for r in report.results:
        for cid in r.check.refs.checkov:
            key = (r.kind, r.namespace or "default", r.name)
            verdicts[cid][key] = verdicts[cid].get(key, True) and r.passed
    return verdicts, ours


def compare(directory: Path, exe: Path) -> dict[str, object]:
    theirs = run_checkov(exe, directory)
    mine, ours = run_ours(directory)
    rows = []
    for cid in sorted(ours, key=lambda c: (c.split("_")[0], int(c.rsplit("_", 1)[1]))):
        a, b = mine.get(cid, {}), theirs.get(cid, {})
        both = sorted(set(a) & set(b))
        disagree = [{"resource": "/".join(k), "ours": "pass" if a[k] else "fail",
                     "checkov": "pass" if b[k] else "fail"} for k in both if a[k] != b[k]]
        rows.append({"checkov": cid, "ours": ours[cid], "compared": len(both),
                     "agree": len(both) - len(disagree), "disagree": disagree,
                     "only_ours": len(set(a) - set(b)), "only_checkov": len(set(b) - set(a))})
    return {"directory": str(directory), "checks": rows}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="*", type=Path)
    ap.add_argument("--checkov", help="checkov executable (default: own virtualenv)")
    ap.add_argument("--json", type=Path, help="also write the comparison here")
    args = ap.parse_args()
    dirs = args.dirs
    if not dirs:
        demo = OUT / "demo-manifests"
        shutil.rmtree(demo, ignore_errors=True)
        dirs = [write_manifests(as_manifests(open_source("demo")), demo)]
    exe = checkov_executable(args.checkov)
    results = []
    total = agree = 0
    for d in dirs:
        res = compare(d, exe)
        results.append(res)
        print(f"== {d}")
        for row in res["checks"]:
            total += row["compared"]
            agree += row["agree"]
            print(f"  {row['checkov']:<12} {','.join(row['ours']):<40} compared "
                  f"{row['compared']:>4}, agree {row['agree']:>4}"
                  + (f", only ours {row['only_ours']}" if row["only_ours"] else "")
                  + (f", only checkov {row['only_checkov']}" if row["only_checkov"] else ""))
            for x in row["disagree"]:
                print(f"      differs on {x['resource']}: ours {x['ours']}, "
                      f"checkov {x['checkov']}")
    print(f"verdicts compared: {total}, agreeing: {agree} "
          f"({100 * agree / total if total else 100:.1f} %)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
