"""Per-attempt workspaces (empty, template, git worktree), keep/ttl and the sweep.

Real directories, real git (a local repository and its mirror)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from stockade.errors import WorkspaceError
from stockade.runner import gitmirror
from stockade.runner.workspace import Plan, create, sweep, workspaces_dir
from stockade.spec.task import TaskSpec


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", "-c", "user.email=t@t", "-c", "user.name=t", *args],
        cwd=cwd, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    git("init", "-q", "-b", "main", cwd=path)
    (path / "r.txt").write_text("one\n")
    git("add", ".", cwd=path)
    git("commit", "-qm", "one", cwd=path)
    git("tag", "v1", cwd=path)
    return path


def worktrees(data: Path, repo: Path) -> list[str]:
    mirror = gitmirror.mirror_path(data, str(repo))
    out = git("--git-dir", str(mirror), "worktree", "list", "--porcelain", cwd=data)
    return [line for line in out.splitlines() if line.startswith("worktree ")]


def test_empty_and_template_workspaces_are_fresh_and_removed(tmp_path: Path) -> None:
    template = tmp_path / "tpl"
    (template / "sub").mkdir(parents=True)
    (template / "sub" / "f").write_text("t\n")
    (template / "link").symlink_to("/etc/shadow")  # copied as a link, never followed
    data = tmp_path / "data"
    empty = create(data, "job1", 1, Plan())
    assert list(empty.path.iterdir()) == []
    copied = create(data, "job2", 1, Plan(template=str(template)))
    assert (copied.path / "sub" / "f").read_text() == "t\n"
    assert (copied.path / "link").is_symlink()
    assert empty.path != copied.path
    assert not empty.finish(succeeded=True) and not copied.finish(succeeded=False)
    assert list(workspaces_dir(data).iterdir()) == []


def test_keep_policies_and_ttl_sweep(tmp_path: Path) -> None:
    data = tmp_path / "data"
    on_failure = Plan(keep="on_failure", ttl=60)
    kept = create(data, "a", 1, on_failure)
    assert kept.finish(succeeded=False, now=1000.0)
    gone = create(data, "b", 1, on_failure)
    assert not gone.finish(succeeded=True)
    always = create(data, "c", 1, Plan(keep="always", ttl=10))
    assert always.finish(succeeded=True, now=1000.0)
    assert kept.path.exists() and always.path.exists() and not gone.path.exists()
    assert sweep(data, now=1005.0) == []  # both within their ttl
    assert sweep(data, now=1011.0) == [str(always.path)]
    assert sweep(data, now=1061.0) == [str(kept.path)]
    assert list(workspaces_dir(data).iterdir()) == []


def test_a_dead_owners_workspace_is_swept_a_live_ones_is_not(tmp_path: Path) -> None:
    data = tmp_path / "data"
    live = create(data, "live", 1, Plan())
    dead = workspaces_dir(data) / "999999999-1-gone.1"  # no such pid
    dead.mkdir()
    (dead / "f").write_text("x")
    foreign = workspaces_dir(data) / "not-ours"
    foreign.mkdir()
    assert sweep(data) == [str(dead)]
    assert live.path.exists() and foreign.exists()


def test_git_worktree_at_a_ref_fetched_when_missing_and_pruned(tmp_path: Path, repo: Path) -> None:
    data = tmp_path / "data"
    first = create(data, "g1", 1, Plan(repo=str(repo), ref="v1"))
    assert (first.path / "r.txt").read_text() == "one\n"
    (repo / "r.txt").write_text("two\n")
    git("commit", "-qam", "two", cwd=repo)
    git("branch", "new", cwd=repo)
    second = create(data, "g2", 1, Plan(repo=str(repo), ref="new"))  # not in the mirror yet
    assert (second.path / "r.txt").read_text() == "two\n"
    assert second.commit == git("rev-parse", "HEAD", cwd=repo)
    assert len(worktrees(data, repo)) == 3  # the mirror itself and two worktrees
    first.finish(succeeded=True)
    second.finish(succeeded=True)
    assert worktrees(data, repo) == [worktrees(data, repo)[0]]  # no stale entries
    assert list(workspaces_dir(data).iterdir()) == []


def test_a_kept_worktree_swept_leaves_no_stale_entry(tmp_path: Path, repo: Path) -> None:
    data = tmp_path / "data"
    kept = create(data, "k", 1, Plan(repo=str(repo), ref="main", keep="always", ttl=1))
    kept.finish(succeeded=True, now=0.0)
    assert sweep(data, now=2.0) == [str(kept.path)]
    assert len(worktrees(data, repo)) == 1


def test_bad_git_ref_or_repo_is_a_clear_error(tmp_path: Path, repo: Path) -> None:
    with pytest.raises(WorkspaceError, match="git ref 'nope' is not in"):
        create(tmp_path / "d", "x", 1, Plan(repo=str(repo), ref="nope"))
    with pytest.raises(WorkspaceError, match="cannot clone"):
        create(tmp_path / "d", "y", 1, Plan(repo=str(tmp_path / "missing"), ref="main"))
    assert list(workspaces_dir(tmp_path / "d").iterdir()) == []


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"workspace": "full"}, "write empty, or a mapping"),
        ({"workspace": {"template": "/nonexistent-dir"}}, "is not a directory"),
        ({"workspace": {"keep": "sometimes"}}, "never"),
        ({"workspace": {"git": {"repo": "x", "ref": "--upload-pack=evil"}}}, "is not a branch"),
        ({"artifacts": ["../etc/passwd"]}, "relative to the workspace"),
        ({"artifacts": ["/etc/*"]}, "relative to the workspace"),
    ],
)
def test_bad_workspace_and_artifact_keys_are_refused(keys: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TaskSpec.model_validate({"run": "true", **keys})


def test_workspace_keys_reach_the_run_spec(tmp_path: Path) -> None:
    task = TaskSpec.model_validate(
        {"run": "true", "workspace": "empty", "artifacts": ["out/*.txt"],
         "artifact_limits": {"file": "1KiB"}}
    )  # fmt: skip
    spec = task.to_run_spec("t", secrets={})
    assert spec.workspace is not None and spec.workspace["keep"] == "never"
    assert spec.artifacts == ("out/*.txt",)
    assert spec.artifact_limits["file"] == 1024
