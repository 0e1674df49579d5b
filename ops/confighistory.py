"""Configuration history in Git: every change of the configuration in force, one commit, with its author and reason.

The guide's backup table: configuration "on change, 90 days, Git". The repository holds one YAML file per part of
the configuration in force (the files with the console's and the CLI's stored documents over them) and `IN_FORCE`
(the stored version). A save, a rollback or a restore commits with the person and the reason they gave; a change of
the files themselves is found and committed (author `files`) the next time `nightwatch health` or `nightwatch
config` runs. Nothing is ever pruned, so every change stays far longer than the guide's 90 days.

It is written with dulwich, Git in pure Python (no git binary on the servers): a bare repository, by default
beside the hot store (`config-history/`; $NIGHTWATCH_CONFIG_HISTORY elsewhere), pushed after each commit to
$NIGHTWATCH_CONFIG_HISTORY_REMOTE when set (any URL dulwich pushes to: a path, ssh://, https://). A failed push
is logged and retried with the next commit; the local history is complete either way.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from dulwich import porcelain
from dulwich.objects import Blob, Commit, Tree
from dulwich.repo import Repo

from config.environment import environment
from config.settings import NightwatchConfig
from store.hot import HotStore

log = logging.getLogger("nightwatch.config")
BRANCH = b"refs/heads/main"
VERSION_FILE = "IN_FORCE"
_NOT_PARTS = {"fingerprint", "config_version"}


@dataclass(frozen=True)
class Change:
    commit: str
    author: str
    at: datetime
    message: str
    files: tuple[str, ...]  # what this commit changed


def history_dir(store: HotStore) -> Path:
    """$NIGHTWATCH_CONFIG_HISTORY, else `config-history/` beside a SQLite hot store, else under the output folder."""
    env = environment()
    if env.config_history:
        return Path(env.config_history)
    database = store.engine.url.database if store.engine.dialect.name == "sqlite" else None
    base = Path(database).parent if database else Path(env.output)
    return base / "config-history"


def snapshot(config: NightwatchConfig) -> dict[str, bytes]:
    """The configuration in force as files: `<part>.yaml` for each part, and the stored version."""
    files = {
        f"{name}.yaml": yaml.safe_dump(
            getattr(config, name).model_dump(mode="json", by_alias=True), sort_keys=True, allow_unicode=True
        ).encode()
        for name in NightwatchConfig.model_fields
        if name not in _NOT_PARTS
    }
    files[VERSION_FILE] = f"{config.config_version}\n".encode()
    return files


def _open(path: Path) -> Repo:
    if (path / "HEAD").is_file():
        return Repo(str(path))
    path.mkdir(parents=True, exist_ok=True)
    repo = Repo.init_bare(str(path))
    repo.refs.set_symbolic_ref(b"HEAD", BRANCH)
    return repo


def _head(repo: Repo) -> bytes | None:
    return repo.refs[BRANCH] if BRANCH in repo.refs else None


def commit(path: Path, files: dict[str, bytes], author: str, reason: str, when: datetime | None = None) -> str | None:
    """Commit `files` as the whole tree when it differs from the last commit; the new commit's id, or None when
    nothing changed. Safe against another process committing at the same moment (the ref moves only from the
    head this commit was made on)."""
    repo = _open(path)
    try:
        tree = Tree()
        for name, data in sorted(files.items()):
            blob = Blob.from_string(data)
            repo.object_store.add_object(blob)
            tree.add(name.encode(), 0o100644, blob.id)
        repo.object_store.add_object(tree)
        for _attempt in range(5):
            head = _head(repo)
            if head is not None and repo[head].tree == tree.id:
                return None
            made = Commit()
            made.tree = tree.id
            made.parents = [head] if head is not None else []
            made.author = made.committer = f"{author} <{author}@nightwatch>".encode()
            stamp = int((when or datetime.now(timezone.utc)).timestamp())
            made.author_time = made.commit_time = stamp
            made.author_timezone = made.commit_timezone = 0
            made.encoding = b"UTF-8"
            made.message = (reason.strip() or "(no reason given)").encode() + b"\n"
            repo.object_store.add_object(made)
            if repo.refs.set_if_equals(BRANCH, head, made.id):
                _push(repo)
                return made.id.decode()
        raise RuntimeError(f"{path}: the configuration history kept moving; commit not recorded")
    finally:
        repo.close()


def _push(repo: Repo) -> None:
    remote = environment().config_history_remote
    if not remote:
        return
    try:
        porcelain.push(repo, remote, [BRANCH], outstream=io.BytesIO(), errstream=io.BytesIO())
    except Exception as exc:  # noqa: BLE001 - the local history is complete; the next commit pushes again
        log.warning("configuration history not pushed to %s: %s", remote, exc)


def record(store: HotStore, config: NightwatchConfig, author: str, reason: str) -> str | None:
    """Commit the configuration in force (`config`) when it changed; the commit id, or None."""
    return commit(history_dir(store), snapshot(config), author, reason)


def history(store: HotStore, limit: int = 50) -> list[Change]:
    """The newest commits first."""
    path = history_dir(store)
    if not (path / "HEAD").is_file():
        return []
    repo = Repo(str(path))
    try:
        head = _head(repo)
        if head is None:
            return []
        changes = []
        for entry in repo.get_walker(include=[head], max_entries=limit):
            made = entry.commit
            touched = sorted(
                {
                    (change.new.path or change.old.path).decode()
                    for change in entry.changes()
                    if not isinstance(change, list)
                }
            )
            changes.append(
                Change(
                    made.id.decode(),
                    made.author.decode().split(" <")[0],
                    datetime.fromtimestamp(made.author_time, timezone.utc),
                    made.message.decode().strip(),
                    tuple(touched),
                )
            )
        return changes
    finally:
        repo.close()


def files_at(store: HotStore, commit_id: str) -> tuple[str, dict[str, Any]]:
    """The full commit id and the configuration documents (`<part>.yaml`, parsed) at a commit, named by its id or
    an unambiguous prefix of it; ValueError when there is no such commit."""
    path = history_dir(store)
    if not (path / "HEAD").is_file():
        raise ValueError(f"no configuration history at {path}")
    wanted = commit_id.strip().lower()
    if len(wanted) < 4:
        raise ValueError("name the commit by at least 4 characters of its id (nightwatch config history)")
    repo = Repo(str(path))
    try:
        head = _head(repo)
        found = [
            entry.commit.id
            for entry in (repo.get_walker(include=[head]) if head is not None else [])
            if entry.commit.id.decode().startswith(wanted)
        ]
        if len(found) != 1:
            raise ValueError(
                f"no commit {commit_id!r} in the configuration history"
                if not found
                else f"{commit_id!r} names {len(found)} commits: give more of its id"
            )
        tree = repo[repo[found[0]].tree]
        documents = {}
        for item in tree.items():
            name = item.path.decode()
            if name.endswith(".yaml"):
                documents[name.removesuffix(".yaml")] = yaml.safe_load(repo[item.sha].data)
        return found[0].decode(), documents
    finally:
        repo.close()
