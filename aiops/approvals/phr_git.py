"""The store's git side, through GitPython: find the repository, commit only the
store's own files, read the committed tree, history and reflog for verify.

Git commands (not GitPython's pure-Python index) do the writing: `git commit --
PATHS` commits exactly those paths and leaves whatever the user has staged
alone, and git's C code keeps a commit fast in a repository of 10,000 records.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import git

from aiops.errors import HistoryError

_LOCK_WORDS = ("index.lock", "cannot lock ref", "Unable to create", ".lock': File exists")


def open_repo(root: Path) -> git.Repo:
    """The git repository whose work tree holds `root` (which may not exist yet)."""
    probe = root
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        repo = git.Repo(probe, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise HistoryError(f"the PHR store {root} is not in a git repository",
                           f"run `git init` in {probe} or point --store / AIOPS_HISTORY "
                           "at a directory inside a git work tree") from None
    if repo.bare or repo.working_tree_dir is None:
        raise HistoryError(f"{repo.git_dir} is a bare repository", "use a work tree")
    work = Path(repo.working_tree_dir).resolve()
    if not root.resolve().is_relative_to(work) or ".git" in root.resolve().relative_to(work).parts:
        raise HistoryError(f"the PHR store {root} is not inside the work tree {work}",
                           "choose a directory inside the repository")
    return repo


@dataclass
class StoreStatus:
    """Store files git reports as not matching HEAD, relative to the repository."""

    pending: list[str] = field(default_factory=list)  # new: untracked or only staged
    changed: list[tuple[str, str]] = field(default_factory=list)  # (status, path) of HEAD files


class GitStore:
    """Git operations on one store directory (`rel`: its path in the repository)."""

    def __init__(self, repo: git.Repo, root: Path, lock_timeout: float) -> None:
        self.repo = repo
        self.work = Path(repo.working_tree_dir or ".").resolve()
        self.rel = root.resolve().relative_to(self.work).as_posix()
        self.lock_timeout = lock_timeout
        self.index_lock = Path(repo.git_dir) / "index.lock"
        reader = repo.config_reader()
        self._has_committer = bool(reader.get_value("user", "email", "")) and bool(
            reader.get_value("user", "name", ""))

    def path_of(self, rel_path: str) -> Path:
        return self.work / rel_path

    def rel_of(self, path: Path) -> str:
        return path.resolve().relative_to(self.work).as_posix()

    # -- writing --------------------------------------------------------------
    def status(self) -> StoreStatus:
        """What in the store differs from HEAD (read-only: takes no index lock)."""
        raw = self.repo.git.execute(
            ["git", "--no-optional-locks", "status", "--porcelain=v1", "-z",
             "--untracked-files=all", "--", self.rel], strip_newline_in_stdout=False)
        out = StoreStatus()
        parts = iter(raw.split("\0"))
        for entry in parts:
            if len(entry) < 4:
                continue
            code, path = entry[:2], entry[3:]
            if code[0] in "RC":
                next(parts, None)  # the rename's source path
            if code == "??" or (code[0] == "A" and code[1] in " MD"):
                out.pending.append(path)
            else:
                out.changed.append((code.strip(), path))
        return out

    def commit(self, paths: list[str], message: str, name: str, email: str) -> None:
        """Commit exactly `paths` (already written), authored by the actor.

        Waits (bounded) for a foreign `index.lock`; hooks are skipped so a lint
        hook cannot refuse an audit record.
        """
        env = {} if self._has_committer else {"GIT_COMMITTER_NAME": name,
                                               "GIT_COMMITTER_EMAIL": email}
        self._with_lock_retry(lambda: self.repo.git.add("--", *paths))
        self._with_lock_retry(lambda: self.repo.git.commit(
            "--quiet", "--no-verify", "-m", message, f"--author={name} <{email}>",
            "--", *paths, env=env))

    def _with_lock_retry(self, run) -> None:
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.01
        while True:
            if self.index_lock.exists() and time.monotonic() < deadline:
                time.sleep(delay)
                delay = min(delay * 2, 0.2)
                continue
            try:
                run()
                return
            except git.GitCommandError as exc:
                stderr = str(exc.stderr or "")
                locked = any(w in stderr for w in _LOCK_WORDS)
                if not locked:
                    first = next((ln.strip() for ln in stderr.splitlines() if ln.strip()),
                                 str(exc))
                    raise HistoryError(f"git failed in {self.work}: {first}",
                                       "fix the repository, then record again") from None
                if time.monotonic() >= deadline:
                    raise HistoryError(
                        f"git is locked: {self.index_lock} is held by another git process "
                        f"(waited {self.lock_timeout:.1f} s)",
                        "let that git command finish, or delete the lock file if no git "
                        "process is running") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.2)

    # -- reading, for verify ----------------------------------------------------
    def has_head(self) -> bool:
        try:
            self.repo.git.rev_parse("--verify", "--quiet", "HEAD")
            return True
        except git.GitCommandError:
            return False

    def tree_blobs(self, rev: str = "HEAD") -> dict[str, str]:
        """{path: blob sha} of the store in commit `rev`."""
        raw = self.repo.git.execute(["git", "ls-tree", "-r", "-z", "--full-tree", rev, "--",
                                     self.rel], strip_newline_in_stdout=False)
        out = {}
        for entry in raw.split("\0"):
            if entry:
                info, path = entry.split("\t", 1)
                out[path] = info.split()[2]
        return out

    def history(self) -> list[tuple[str, list[tuple[str, str]]]]:
        """[(commit, [(status, path)])], oldest first, for commits touching the store."""
        raw = self.repo.git.execute(
            ["git", "-c", "core.quotePath=false", "log", "--reverse", "--no-renames",
             "--name-status", "--format=%x01%H", "--", self.rel])
        out: list[tuple[str, list[tuple[str, str]]]] = []
        for line in raw.splitlines():
            if line.startswith("\x01"):
                out.append((line[1:], []))
            elif line.strip() and out:
                status, _, path = line.partition("\t")
                out[-1][1].append((status[:1], path))
        return out

    def orphaned_commits(self) -> list[str]:
        """Commits the reflogs remember but no branch or tag reaches: left behind by
        `commit --amend`, rebase or reset."""
        seen: set[str] = set()
        logs = [Path(self.repo.git_dir) / "logs" / "HEAD"]
        if not self.repo.head.is_detached:
            logs.append(Path(self.repo.common_dir) / "logs" / self.repo.head.ref.path)
        for log in logs:
            try:
                lines = log.read_text(errors="replace").splitlines()
            except FileNotFoundError:
                continue
            for line in lines:
                parts = line.split(" ", 2)
                if len(parts) == 3:
                    seen.update(parts[:2])
        seen.discard("0" * 40)
        if not seen:
            return []
        reachable = set(self.repo.git.rev_list("--all").split())
        return sorted(seen - reachable)

    def store_tree(self, rev: str) -> str | None:
        try:
            return self.repo.git.rev_parse("--verify", "--quiet", f"{rev}:{self.rel}")
        except git.GitCommandError:
            return None

    def blob(self, sha: str) -> bytes:
        return self.repo.odb.stream(bytes.fromhex(sha)).read()
