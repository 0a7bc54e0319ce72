"""Upload a dataset folder to the Hugging Face Hub (`cfqa push`), only what changed, card kept consistent.

The token comes from the usual huggingface_hub mechanisms (HF_TOKEN, `hf auth login`); it is never printed or
written here. A 400 GB release does not fit one commit: `configs` pushes some configs per call, and the card
pushed each time describes exactly the configs whose shards are all on the Hub afterwards.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError
from huggingface_hub.hf_api import RepoFile

from . import card, layout, manifest

REPO_TYPE = "dataset"


@dataclass
class PushPlan:
    """What `push` uploads (repo path -> local path or bytes) and deletes, and the card's configs."""

    repo_id: str
    configs: list[str]
    uploads: dict[str, Path | bytes] = field(default_factory=dict)
    deletes: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    repo_exists: bool = True
    branch_exists: bool = True
    remote_error: str | None = None
    committed: bool = False

    def format(self) -> str:
        """Human-readable listing of the operations."""
        lines = [f"push to {self.repo_id} (dataset{'' if self.repo_exists else ', to be created'})"]
        if self.remote_error:
            lines.append(f"Hub not reachable ({self.remote_error}): planned against an empty repo")
        lines.append("card configs: " + ", ".join(self.configs))
        for path, src in sorted(self.uploads.items()):
            size = len(src) if isinstance(src, bytes) else src.stat().st_size
            lines.append(f"  upload {path} ({size:,} bytes)")
        lines += [f"  delete {p}" for p in self.deletes]
        lines.append(f"  {len(self.unchanged)} file(s) unchanged")
        return "\n".join(lines)


def _git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _remote_files(api: HfApi, repo_id: str, revision: str | None) -> tuple[dict[str, RepoFile], bool, bool]:
    """(files, repo exists, branch exists) of the remote."""
    try:
        entries = api.list_repo_tree(repo_id, recursive=True, repo_type=REPO_TYPE, revision=revision)
        return {e.path: e for e in entries if isinstance(e, RepoFile)}, True, True
    except RepositoryNotFoundError:
        return {}, False, False
    except RevisionNotFoundError:
        return {}, True, False


def _same(remote: RepoFile | None, sha256: str, data: bytes | None = None) -> bool:
    """Whether a remote file has the given content (LFS sha256, or git blob sha1 for small files)."""
    if remote is None:
        return False
    if remote.lfs is not None:
        return remote.lfs.sha256 == sha256
    return data is not None and remote.blob_id == _git_blob_sha1(data)


def plan_push(
    path: str | os.PathLike[str],
    repo_id: str,
    *,
    configs: Iterable[str] | None = None,
    api: HfApi | None = None,
    revision: str | None = None,
    allow_unreachable: bool = False,
) -> PushPlan:
    """Compute the operations of a push without changing anything (the remote tree is read).

    With `allow_unreachable` (dry runs), a Hub that cannot be reached (offline mode, no network) is planned
    against as an empty repo and `PushPlan.remote_error` says why.
    """
    root = Path(path)
    report = manifest.verify(root)
    if not report.ok:
        raise ValueError(f"{root} does not verify; fix it before pushing:\n" + "\n".join(report.errors))
    api = api or HfApi()
    meta = card.read_meta(root)
    available = card.all_configs(meta)
    selected = available if configs is None else list(configs)
    unknown = sorted(set(selected) - set(available))
    if unknown:
        raise ValueError(f"unknown config(s) {unknown}; {root} has {available}")
    hashes = manifest.read_manifest(root / layout.MANIFEST)
    shards = layout.scan_shards(root)
    remote_error = None
    try:
        remote, exists, branch_exists = _remote_files(api, repo_id, revision)
    except Exception as exc:  # network/offline errors come from several libraries (httpx, requests, hf_hub)
        if not allow_unreachable:
            raise
        remote, exists, branch_exists = {}, False, False
        remote_error = f"{type(exc).__name__}: {exc}"

    def family_files(name: str) -> list[str]:
        return [f for key in card.config_families(meta, name) for f in shards.get(key, [])]

    selected_files = {f for name in selected for f in family_files(name)}
    # Configs already complete on the Hub stay in the card; others the card must not mention.
    card_configs = [
        c
        for c in available
        if c in selected
        or all(f in selected_files or _same(remote.get(f), hashes[f]) for f in family_files(c))
    ]
    plan = PushPlan(repo_id, card_configs, repo_exists=exists, branch_exists=branch_exists)
    plan.remote_error = remote_error
    for rel in sorted(selected_files):
        if _same(remote.get(rel), hashes[rel]):
            plan.unchanged.append(rel)
        else:
            plan.uploads[rel] = root / rel
    described = {f for name in card_configs for f in family_files(name)}
    selected_families = {k for name in selected for k in card.config_families(meta, name)}
    card_tasks = {c.partition("-")[0] for c in card_configs if "-" not in c}
    for rel in sorted(remote):
        key = layout.parse_shard(rel)
        # A stale remote shard would be matched by a config's glob: remove it where the card reads.
        if key is not None and rel not in described and (key in selected_families or key.task in card_tasks):
            plan.deletes.append(rel)
    card_text = card.render_card(root, card_configs).encode()
    meta_bytes = (root / layout.META).read_bytes()
    man_hashes = {rel: hashes[rel] for rel in described}
    man_hashes[layout.CARD] = hashlib.sha256(card_text).hexdigest()
    man_hashes[layout.META] = hashlib.sha256(meta_bytes).hexdigest()
    man_text = manifest.render_manifest(man_hashes).encode()
    for rel, data in ((layout.CARD, card_text), (layout.META, meta_bytes), (layout.MANIFEST, man_text)):
        if _same(remote.get(rel), hashlib.sha256(data).hexdigest(), data):
            plan.unchanged.append(rel)
        else:
            plan.uploads[rel] = data
    return plan


def push(
    path: str | os.PathLike[str],
    repo_id: str,
    *,
    configs: Iterable[str] | None = None,
    private: bool = False,
    dry_run: bool = False,
    api: HfApi | None = None,
    revision: str | None = None,
    commit_message: str | None = None,
) -> PushPlan:
    """Upload a verified dataset folder (or some of its configs) to the Hub dataset repo `repo_id`.

    Creates the repo if needed (`private` applies only then), uploads only files whose sha256 differs from the
    Hub's, deletes stale shards the card's globs would read, and uploads the card regenerated for the configs
    complete after the commit. `dry_run` returns the plan without creating or committing anything.
    """
    api = api or HfApi()
    plan = plan_push(path, repo_id, configs=configs, api=api, revision=revision, allow_unreachable=dry_run)
    if dry_run or (not plan.uploads and not plan.deletes):
        return plan
    if not plan.repo_exists:
        api.create_repo(repo_id, repo_type=REPO_TYPE, private=private, exist_ok=True)
    if revision is not None and not plan.branch_exists:
        api.create_branch(repo_id, branch=revision, repo_type=REPO_TYPE, exist_ok=True)
    operations: list[CommitOperationAdd | CommitOperationDelete] = [
        CommitOperationAdd(path_in_repo=rel, path_or_fileobj=src if isinstance(src, bytes) else str(src))
        for rel, src in sorted(plan.uploads.items())
    ]
    operations += [CommitOperationDelete(path_in_repo=rel) for rel in plan.deletes]
    api.create_commit(
        repo_id,
        operations,
        commit_message=commit_message or f"CFQA: upload {', '.join(plan.configs)}",
        repo_type=REPO_TYPE,
        revision=revision,
    )
    plan.committed = True
    return plan
