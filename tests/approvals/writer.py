"""A PHR writer run as a separate process by the reliability tests.

usage: python -m tests.approvals.writer STORE COUNT TAG [--pause-before-replace MARKER]
With --pause-before-replace it touches MARKER and sleeps between the temporary
file's fsync and the os.replace that publishes it, so the test can kill it there.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

from aiops.approvals import PhrStore
from aiops.approvals import phr_files as files
from aiops.errors import UncommittedRecordError


def main(argv: list[str]) -> int:
    root, count, tag = Path(argv[0]), int(argv[1]), argv[2]
    if len(argv) > 4 and argv[3] == "--pause-before-replace":
        marker = Path(argv[4])

        def pause(tmp: Path, final: Path) -> None:
            if final.name.endswith(".md"):
                # published whole (rename), so the test never reads it half written
                part = marker.with_name(marker.name + ".part")
                part.write_text(f"{tmp}\n{final}\n")
                part.replace(marker)
                time.sleep(120)

        files.BEFORE_REPLACE = pause
    store = PhrStore(root, lock_timeout=60)
    actor = {"name": f"writer {tag}", "email": f"{tag}@example.com"}
    for i in range(count):
        with contextlib.suppress(UncommittedRecordError):  # kept; the next record commits it
            store.record("approval", actor=actor, title=f"{tag} {i}", data={"writer": tag, "i": i})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
