"""Reading Git with dulwich: refs resolve to commits, folders read at a commit, clear errors otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
from dulwich import porcelain

from tasks.gitops.source import GitSource, GitSourceError, read_folder, resolve_ref


def _commit(repo: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        porcelain.add(str(repo), [str(path)])
    return porcelain.commit(str(repo), message.encode(), author=b"t <t@example.com>",
                            committer=b"t <t@example.com>").decode()


@pytest.fixture
def repository(tmp_path: Path) -> tuple[Path, str, str]:
    repo = tmp_path / "repo"
    porcelain.init(str(repo))
    first = _commit(repo, {"gitops/regional/a.yaml": "one", "README.md": "x"}, "first")
    porcelain.tag_create(str(repo), b"v1", annotated=True, message=b"v1", author=b"t <t@example.com>")
    second = _commit(repo, {"gitops/regional/a.yaml": "two", "gitops/fleet/b.yaml": "b"}, "second")
    return repo, first, second


def test_branch_tag_head_and_commit_resolve_to_commits(repository: tuple[Path, str, str]) -> None:
    repo, first, second = repository
    source = GitSource(str(repo))
    branch = porcelain.active_branch(str(repo)).decode()
    assert resolve_ref(source, branch) == second
    assert resolve_ref(source, "HEAD") == second
    assert resolve_ref(source, "v1") == first  # an annotated tag peels to its commit
    assert resolve_ref(source, first[:10]) == first


def test_a_folder_is_read_at_the_commit_asked_for(repository: tuple[Path, str, str]) -> None:
    repo, first, second = repository
    source = GitSource(str(repo))
    assert read_folder(source, first, "gitops") == {"gitops/regional/a.yaml": b"one"}
    assert read_folder(source, second, "gitops") == {"gitops/regional/a.yaml": b"two", "gitops/fleet/b.yaml": b"b"}


def test_unknown_ref_lists_the_branches_and_names_the_field(repository: tuple[Path, str, str]) -> None:
    repo, _, _ = repository
    with pytest.raises(GitSourceError, match=r"ref 'nope' is neither.*branches: .*fix gitops.ref"):
        resolve_ref(GitSource(str(repo)), "nope")


def test_missing_folder_and_missing_repository_name_the_field(repository: tuple[Path, str, str],
                                                               tmp_path: Path) -> None:
    repo, first, _ = repository
    with pytest.raises(GitSourceError, match="folder 'deploy' does not exist.*gitops.path"):
        read_folder(GitSource(str(repo)), first, "deploy")
    with pytest.raises(GitSourceError, match="is not a Git repository.*gitops.repository"):
        resolve_ref(GitSource(str(tmp_path / "nowhere")), "main")
