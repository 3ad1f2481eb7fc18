"""System tags describing where a run comes from: user, source file and type, git commit.

Reads ``.git`` files directly (no subprocess), so starting a run stays fast.
"""

from __future__ import annotations

import getpass
import os
import random
import sys

__all__ = [
    "TAG_RUN_NAME",
    "TAG_PARENT_RUN_ID",
    "TAG_USER",
    "TAG_SOURCE_NAME",
    "TAG_SOURCE_TYPE",
    "TAG_GIT_COMMIT",
    "TAG_GIT_BRANCH",
    "TAG_GIT_REPO_URL",
    "TAG_NOTE",
    "current_user",
    "system_tags",
    "git_commit",
    "generate_run_name",
]

TAG_RUN_NAME = "mlflow.runName"
TAG_PARENT_RUN_ID = "mlflow.parentRunId"
TAG_USER = "mlflow.user"
TAG_SOURCE_NAME = "mlflow.source.name"
TAG_SOURCE_TYPE = "mlflow.source.type"
TAG_GIT_COMMIT = "mlflow.source.git.commit"
TAG_GIT_BRANCH = "mlflow.source.git.branch"
TAG_GIT_REPO_URL = "mlflow.source.git.repoURL"
TAG_NOTE = "mlflow.note.content"

_ADJECTIVES = (
    "amber bold brisk calm clever crisp daring eager fast gentle glad grand honest jolly keen "
    "lively lucky merry mighty neat nimble polite proud quick quiet rapid shy silent smart "
    "steady sunny swift tidy upbeat vivid warm wise witty young zesty"
).split()
_NOUNS = (
    "ant bat bear bee bird carp cat crab crow deer dove duck eel elk finch fox frog goat hare "
    "hawk heron ibis jay koala lark lion lynx mole moth newt owl panda pike quail ram robin "
    "seal shrew slug snail swan tern toad trout vole wasp whale wolf wren yak zebra"
).split()


def current_user() -> str:
    """Return the login name of the user running the process ("unknown" if it cannot be found)."""
    try:
        return getpass.getuser()
    except Exception:  # getpass raises OSError/KeyError variants depending on the platform
        return "unknown"


def _source() -> tuple[str, str]:
    main = sys.modules.get("__main__")
    if "ipykernel" in sys.modules or (main is not None and not hasattr(main, "__file__")):
        if "ipykernel" in sys.modules:
            return "notebook", "NOTEBOOK"
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    if argv0 and argv0 not in ("-c", "-m"):
        return os.path.abspath(argv0), "LOCAL"
    if main is not None and getattr(main, "__file__", None):
        return os.path.abspath(str(main.__file__)), "LOCAL"
    return "<interactive>", "LOCAL"


def _find_git_dir(start: str) -> str | None:
    path = os.path.abspath(start)
    if os.path.isfile(path):
        path = os.path.dirname(path)
    while True:
        candidate = os.path.join(path, ".git")
        if os.path.isdir(candidate):
            return candidate
        if os.path.isfile(candidate):  # worktree or submodule: "gitdir: <path>"
            with open(candidate, encoding="utf-8") as fh:
                content = fh.read().strip()
            if content.startswith("gitdir:"):
                return os.path.normpath(os.path.join(path, content.split(":", 1)[1].strip()))
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent


def _resolve_ref(git_dir: str, ref: str) -> str | None:
    for base in (git_dir, _common_dir(git_dir)):
        ref_file = os.path.join(base, *ref.split("/"))
        if os.path.isfile(ref_file):
            with open(ref_file, encoding="utf-8") as fh:
                return fh.read().strip() or None
        packed = os.path.join(base, "packed-refs")
        if os.path.isfile(packed):
            with open(packed, encoding="utf-8") as fh:
                for line in fh:
                    parts = line.strip().split(" ", 1)
                    if len(parts) == 2 and parts[1] == ref:
                        return parts[0]
    return None


def _common_dir(git_dir: str) -> str:
    common = os.path.join(git_dir, "commondir")
    if os.path.isfile(common):
        with open(common, encoding="utf-8") as fh:
            return os.path.normpath(os.path.join(git_dir, fh.read().strip()))
    return git_dir


def git_commit(path: str) -> tuple[str | None, str | None]:
    """Return (commit sha, branch) of the git checkout containing ``path``, or (None, None).

    >>> git_commit("/")
    (None, None)
    """
    try:
        git_dir = _find_git_dir(path)
        if git_dir is None:
            return None, None
        with open(os.path.join(git_dir, "HEAD"), encoding="utf-8") as fh:
            head = fh.read().strip()
        if head.startswith("ref:"):
            ref = head.split(":", 1)[1].strip()
            branch = ref.rsplit("refs/heads/", 1)[-1] if ref.startswith("refs/heads/") else None
            return _resolve_ref(git_dir, ref), branch
        return head or None, None
    except OSError:
        return None, None


def system_tags() -> dict[str, str]:
    """Return the system tags for a new run: user, source name and type, git commit and branch."""
    name, kind = _source()
    tags = {TAG_USER: current_user(), TAG_SOURCE_NAME: name, TAG_SOURCE_TYPE: kind}
    where = name if os.path.exists(name) else os.getcwd()
    commit, branch = git_commit(where)
    if commit:
        tags[TAG_GIT_COMMIT] = commit
    if branch:
        tags[TAG_GIT_BRANCH] = branch
    return tags


def generate_run_name() -> str:
    """Return a memorable random run name such as ``"swift-owl-417"``."""
    rng = random.SystemRandom()
    return f"{rng.choice(_ADJECTIVES)}-{rng.choice(_NOUNS)}-{rng.randint(100, 999)}"
