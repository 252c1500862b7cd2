"""Git sources read with dulwich: resolve a ref to one commit, read the files of a folder at that commit.

dulwich reads repositories in-process (no git binary on workers, no working tree to keep clean), resolves
branches, tags and commits, and fetches over https with credentials handed to it in memory, so a token is
never on a command line or in a remote URL. Remote repositories are mirrored into a bare cache under
FLEETFLOW_HOME (default ~/.fleetflow) and fetched again on every run.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from dulwich import porcelain
from dulwich.errors import NotGitRepository
from dulwich.object_store import iter_tree_contents
from dulwich.objects import Commit, Tag, Tree
from dulwich.repo import Repo

from tasks.retry import FleetflowError

_SHA = re.compile(r"^[0-9a-f]{7,40}$")
_fetch_lock = threading.Lock()


class GitSourceError(FleetflowError):
    """A repository, ref or path that cannot be read; names which and how to fix it."""


@dataclass(frozen=True)
class GitSource:
    """A repository to read, with optional https credentials (kept out of every message)."""

    repository: str
    username: str | None = None
    password: str | None = None

    @property
    def is_remote(self) -> bool:
        """Whether the repository is reached over the network."""
        return self.repository.startswith(("https://", "http://", "ssh://", "git@"))


def _cache_dir() -> Path:
    home = Path(os.environ.get("FLEETFLOW_HOME") or Path.home() / ".fleetflow").expanduser()
    return home / "git-cache"


def _open(source: GitSource) -> Repo:
    if not source.is_remote:
        try:
            return Repo(str(Path(source.repository).expanduser()))
        except (NotGitRepository, FileNotFoundError) as error:
            raise GitSourceError(f"{source.repository} is not a Git repository; set gitops.repository to a "
                                 "repository path or URL", operation="open repository",
                                 resource_id=source.repository) from error
    mirror = _cache_dir() / hashlib.sha256(source.repository.encode()).hexdigest()[:20]
    quiet = io.BytesIO()
    with _fetch_lock:
        try:
            if not (mirror / "HEAD").exists():
                mirror.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                credentials: dict[str, Any] = {}
                if source.username is not None and source.password is not None:
                    credentials = {"username": source.username, "password": source.password}
                return porcelain.clone(source.repository, str(mirror), bare=True, checkout=False,
                                       errstream=quiet, **credentials)
            repo = Repo(str(mirror))
            porcelain.fetch(repo, source.repository, errstream=quiet, quiet=True, include_tags=True,
                            username=source.username, password=source.password, force=True)
            return repo
        except (OSError, porcelain.Error) as error:
            raise GitSourceError(f"fetching {source.repository} failed ({type(error).__name__}); check the URL and "
                                 "the Git credentials block", operation="fetch repository",
                                 resource_id=source.repository, retryable=True) from error


def _peel(repo: Any, sha: bytes) -> bytes:
    obj = repo[sha]
    while isinstance(obj, Tag):
        obj = repo[obj.object[1]]
    if not isinstance(obj, Commit):
        raise KeyError(sha)
    return obj.id


def resolve_ref(source: GitSource, ref: str) -> str:
    """The commit (40 hex digits) that a branch, tag or commit names in the repository."""
    repo: Any = _open(source)
    try:
        refs: dict[bytes, bytes] = repo.get_refs()
        candidates = [f"refs/heads/{ref}", f"refs/remotes/origin/{ref}", f"refs/tags/{ref}", ref]
        for name in candidates:
            sha = refs.get(name.encode())
            if sha is not None:
                return _peel(repo, sha).decode()
        if _SHA.match(ref):
            matches = [sha for sha in repo.object_store if sha.decode().startswith(ref)] if len(ref) < 40 \
                else [ref.encode()]
            if len(matches) == 1:
                try:
                    return _peel(repo, matches[0]).decode()
                except KeyError:
                    pass
        branches = sorted(name.decode().removeprefix("refs/heads/") for name in refs if name.startswith(b"refs/heads/"))
        raise GitSourceError(f"ref {ref!r} is neither a branch, a tag nor a commit of {source.repository} "
                             f"(branches: {', '.join(branches) or 'none'}); fix gitops.ref",
                             operation="resolve ref", resource_id=source.repository)
    finally:
        repo.close()


def read_folder(source: GitSource, commit: str, folder: str) -> dict[str, bytes]:
    """Every file under `folder` at `commit`, keyed by its path in the repository."""
    repo: Any = _open(source)
    try:
        commit_obj = repo[commit.encode()]
        assert isinstance(commit_obj, Commit)
        tree: Tree | None = repo[commit_obj.tree]
        prefix = PurePosixPath(folder.strip("/")) if folder.strip("/") else None
        if prefix is not None:
            for part in prefix.parts:
                assert tree is not None
                try:
                    _mode, sha = tree[part.encode()]
                except KeyError:
                    tree = None
                    break
                entry = repo[sha]
                tree = entry if isinstance(entry, Tree) else None
                if tree is None:
                    break
        if tree is None:
            raise GitSourceError(f"folder {folder!r} does not exist in {source.repository} at {commit[:12]}; fix "
                                 "gitops.path", operation="read folder", resource_id=source.repository)
        files: dict[str, bytes] = {}
        for item in iter_tree_contents(repo.object_store, tree.id):
            if item.path is None or item.sha is None:
                continue
            relative = item.path.decode()
            path = f"{prefix}/{relative}" if prefix is not None else relative
            files[path] = repo[item.sha].as_raw_string()
        return files
    finally:
        repo.close()
