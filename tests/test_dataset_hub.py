"""`push` against a fake in-memory Hub (a stand-in for HfApi): operations, paths, card; never a real token."""

from __future__ import annotations

import hashlib
from pathlib import Path
from unittest.mock import MagicMock

import pytest
import yaml
from huggingface_hub import CommitOperationAdd, CommitOperationDelete
from huggingface_hub.errors import RepositoryNotFoundError
from huggingface_hub.hf_api import RepoFile
from typer.testing import CliRunner

from cfqa_dataset import plan_push, push, write_dataset
from cfqa_dataset.cli import app
from cfqa_dataset.synthetic import synthetic_rows

pytestmark = pytest.mark.usefixtures("cfqa_hf_offline")

SHAPES = {"cls": (1, 1, 5, 8), "seg": (2, 1, 4, 8)}


class FakeHub:
    """The subset of HfApi that push uses, over an in-memory repo (parquet files stored as LFS)."""

    def __init__(self, exists: bool = False):
        self.exists = exists
        self.files: dict[str, bytes] = {}
        self.commits: list[list] = []
        self.created: list[dict] = []

    def list_repo_tree(self, repo_id, recursive=False, repo_type=None, revision=None):
        assert repo_type == "dataset" and recursive
        if not self.exists:
            raise RepositoryNotFoundError("repo not found", response=MagicMock())
        out = []
        for path, data in self.files.items():
            sha1 = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
            lfs = None
            if path.endswith(".parquet"):
                lfs = {"size": len(data), "oid": hashlib.sha256(data).hexdigest(), "pointerSize": 130}
            out.append(RepoFile(path=path, size=len(data), oid=sha1, lfs=lfs))
        return out

    def create_repo(self, repo_id, repo_type=None, private=None, exist_ok=False):
        self.created.append({"repo_id": repo_id, "repo_type": repo_type, "private": private})
        self.exists = True

    def create_commit(self, repo_id, operations, commit_message, repo_type=None, revision=None):
        assert repo_type == "dataset"
        ops = list(operations)
        for op in ops:
            if isinstance(op, CommitOperationAdd):
                with op.as_file() as fh:
                    self.files[op.path_in_repo] = fh.read()
            else:
                assert isinstance(op, CommitOperationDelete)
                del self.files[op.path_in_repo]
        self.commits.append(ops)

    def card(self) -> dict:
        return yaml.safe_load(self.files["README.md"].decode().split("---\n")[1])


def build(root: Path, seed: int = 0) -> Path:
    return write_dataset(root / "cfqa", *synthetic_rows(SHAPES, 2, seed=seed))


def paths(ops) -> set[str]:
    return {op.path_in_repo for op in ops}


def test_first_push_creates_repo_and_uploads_everything(tmp_path):
    out, hub = build(tmp_path), FakeHub()
    plan = push(out, "user/cfqa", private=True, api=hub)
    assert plan.committed and hub.created == [
        {"repo_id": "user/cfqa", "repo_type": "dataset", "private": True}
    ]
    local = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert paths(hub.commits[0]) == local
    assert hub.files["README.md"] == (out / "README.md").read_bytes()
    assert hub.files["MANIFEST.sha256"] == (out / "MANIFEST.sha256").read_bytes()
    # Second push: nothing changed, no commit.
    again = push(out, "user/cfqa", api=hub)
    assert not again.committed and len(hub.commits) == 1 and not again.uploads


def test_only_changed_shards_are_uploaded(tmp_path):
    out, hub = build(tmp_path), FakeHub()
    push(out, "user/cfqa", api=hub)
    # Rebuild with one row of one codec/task changed.
    o, c = synthetic_rows(SHAPES, 2)
    c = list(c)
    idx = next(i for i, r in enumerate(c) if r["task"] == "seg" and r["codec"] == "hm")
    c[idx] = {**c[idx], "raw": 1.0, "label": 99.0}
    write_dataset(out, o, iter(c))
    plan = push(out, "user/cfqa", api=hub)
    shards = {p for p in paths(hub.commits[-1]) if p.endswith(".parquet")}
    assert shards == {"data/seg/compressed-hm-00000-of-00001.parquet"}
    assert "data/cls/originals-00000-of-00001.parquet" in plan.unchanged


def test_config_by_config_push_keeps_the_card_consistent(tmp_path):
    out, hub = build(tmp_path), FakeHub(exists=True)
    plan = push(out, "user/cfqa", configs=["cls-hm"], api=hub)
    assert plan.configs == ["cls-hm"]
    assert {p for p in hub.files if p.startswith("data/")} == {
        "data/cls/originals-00000-of-00001.parquet",
        "data/cls/compressed-hm-00000-of-00001.parquet",
    }
    card = hub.card()
    assert [c["config_name"] for c in card["configs"]] == ["cls-hm"] and card["configs"][0]["default"]
    manifest = hub.files["MANIFEST.sha256"].decode()
    assert "compressed-hyperprior" not in manifest and "README.md" in manifest
    push(out, "user/cfqa", configs=["cls-hyperprior_multi_task"], api=hub)
    # Now every cls shard is on the Hub: the all-codec `cls` config becomes part of the card.
    assert [c["config_name"] for c in hub.card()["configs"]] == ["cls", "cls-hm", "cls-hyperprior_multi_task"]


def test_stale_remote_shards_are_deleted(tmp_path):
    out, hub = build(tmp_path), FakeHub(exists=True)
    hub.files["data/cls/compressed-hm-00000-of-00002.parquet"] = b"old"
    hub.files["data/cls/compressed-hm-00001-of-00002.parquet"] = b"old"
    hub.files["notes.txt"] = b"keep me"
    push(out, "user/cfqa", api=hub)
    deleted = {op.path_in_repo for op in hub.commits[0] if isinstance(op, CommitOperationDelete)}
    assert deleted == {
        "data/cls/compressed-hm-00000-of-00002.parquet",
        "data/cls/compressed-hm-00001-of-00002.parquet",
    }
    assert "notes.txt" in hub.files


def test_dry_run_changes_nothing(tmp_path):
    out, hub = build(tmp_path), FakeHub()
    plan = push(out, "user/cfqa", dry_run=True, api=hub)
    assert not hub.created and not hub.commits and not plan.repo_exists
    assert "upload data/seg/originals-00000-of-00001.parquet" in plan.format()


def test_refuses_a_folder_that_does_not_verify(tmp_path):
    out = build(tmp_path)
    shard = next(out.glob("data/cls/originals-*.parquet"))
    shard.write_bytes(shard.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ValueError, match="does not verify"):
        plan_push(out, "user/cfqa", api=FakeHub())
    with pytest.raises(ValueError, match="unknown config"):
        plan_push(build(tmp_path / "b"), "user/cfqa", configs=["cls-vtm"], api=FakeHub())


def test_cli_push_dry_run_and_config(tmp_path, monkeypatch):
    out, hub = build(tmp_path), FakeHub()
    monkeypatch.setattr("cfqa_dataset.hub.HfApi", lambda: hub)
    res = CliRunner().invoke(app, ["push", str(out), "user/cfqa", "--config", "seg-hm", "--dry-run"])
    assert res.exit_code == 0, res.output
    assert (
        "dry run: nothing uploaded" in res.output
        and "data/seg/compressed-hm-00000-of-00001.parquet" in res.output
    )
    assert "compressed-hyperprior" not in res.output and not hub.commits
    res = CliRunner().invoke(app, ["push", str(out), "user/cfqa", "--private"])
    assert res.exit_code == 0 and "pushed to user/cfqa" in res.output and hub.created[0]["private"] is True
    res = CliRunner().invoke(app, ["push", str(out), "user/cfqa", "--config", "det"])
    assert res.exit_code == 1 and "unknown config" in res.output


def test_push_to_a_new_branch_creates_it(tmp_path):
    from huggingface_hub.errors import RevisionNotFoundError

    out = build(tmp_path)
    api = MagicMock()
    api.list_repo_tree.side_effect = RevisionNotFoundError("no branch", response=MagicMock())
    plan = push(out, "user/cfqa", revision="v2", api=api)
    assert plan.committed and plan.repo_exists and not plan.branch_exists
    api.create_repo.assert_not_called()
    api.create_branch.assert_called_once_with("user/cfqa", branch="v2", repo_type="dataset", exist_ok=True)
    (_, ops), kwargs = api.create_commit.call_args
    assert kwargs["revision"] == "v2" and "README.md" in {op.path_in_repo for op in ops}


def test_unreachable_hub_dry_run_plans_and_real_push_fails_cleanly(tmp_path, monkeypatch):
    out = build(tmp_path)
    api = MagicMock()
    api.list_repo_tree.side_effect = ConnectionError("Name or service not known")
    plan = push(out, "user/cfqa", dry_run=True, api=api)
    assert "Hub not reachable (ConnectionError" in plan.format() and len(plan.uploads) == 9
    monkeypatch.setattr("cfqa_dataset.hub.HfApi", lambda: api)
    res = CliRunner().invoke(app, ["push", str(out), "user/cfqa"])
    assert res.exit_code == 1 and "push failed: ConnectionError" in res.output
    api.create_commit.assert_not_called()
