"""End-to-end `cfqa build` at tiny size: resumable, idempotent, identical under kill -9 and under Dask."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("av")

from builders.config import BuildConfig  # noqa: E402
from builders.pipeline import build  # noqa: E402
from builders.runner import Runner  # noqa: E402

TINY_MINI = {"train_steps": 4, "n_train": 48, "n_val": 16, "batch_size": 8}


def tiny_config(out: Path, **kw) -> BuildConfig:
    values = dict(
        profile="mini", out=str(out), tasks=("cls", "seg"), codecs=("hevc", "av1"), originals=3, workers=0,
        bootstrap=10, mini=TINY_MINI,
    )  # fmt: skip
    values.update(kw)
    return BuildConfig(**values)


@pytest.fixture(scope="module")
def hf_env(tmp_path_factory):
    home = tmp_path_factory.mktemp("hf_home")
    saved = {k: os.environ.get(k) for k in ("HF_HOME", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    os.environ.update(HF_HOME=str(home), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    import datasets

    old_cache = datasets.config.HF_DATASETS_CACHE
    datasets.config.HF_DATASETS_CACHE = home / "datasets"
    yield home
    datasets.config.HF_DATASETS_CACHE = old_cache
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def reference_build(tmp_path_factory, hf_env):
    """One uninterrupted tiny build; its trained mini model seeds the other builds (a unit like any other)."""
    out = tmp_path_factory.mktemp("ref")
    summary = build(tiny_config(out))
    return out, summary


def seed_models(reference: Path, out: Path) -> None:
    shutil.copytree(reference / "cache" / "models", out / "cache" / "models")


def shard_bytes(out: Path) -> dict[str, bytes]:
    root = out / "cfqa"
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_build_writes_dataset_report_and_sane_labels(reference_build, hf_env):
    import datasets

    out, summary = reference_build
    ds = datasets.load_dataset(str(out / "cfqa"), "seg")
    assert ds["originals"].num_rows == 3
    assert ds["compressed"].num_rows == 3 * 2 * 10
    row = ds["compressed"].with_format("numpy")[0]
    assert row["feature"].dtype.name == "float32" and row["feature"].ndim == 4
    assert set(ds["compressed"]["codec"]) == {"hevc", "av1"}
    report = out / "report"
    for name in ("index.md", "rate_label.png", "scatter_cosine.png", "scores.json", "rows.csv"):
        assert (report / name).is_file(), name
    assert "| codec | task |" in (report / "index.md").read_text()
    # cls rows carry the continuous companion label, so the report has a second table for it
    assert (report / "table_label_ce.csv").is_file()
    assert "cls" in (report / "table_label_ce.csv").read_text()
    # bits per feature point fall as rate_index grows, for every codec and original
    compressed = ds["compressed"].to_pandas()
    for _, group in compressed.groupby(["codec", "original_id"]):
        bpfp = group.sort_values("rate_index")["bpfp"].to_numpy()
        assert (bpfp[1:] <= bpfp[:-1] + 1e-12).all()
    saved = json.loads((out / "build_config.json").read_text())
    assert saved["codecs"] == ["hevc", "av1"]
    assert "torch" in json.loads((out / "environment.json").read_text())
    stages = {"models", "codecs", "encode + decode + label", "dataset", "report"}
    assert set(summary["stage_seconds"]) >= stages


def test_rerun_redoes_nothing_and_is_identical(reference_build, hf_env):
    out, _ = reference_build
    before = shard_bytes(out)
    cache_files = {p: p.stat().st_mtime_ns for p in (out / "cache").rglob("*") if p.is_file()}
    runner = Runner(workers=0)
    with runner:
        build(tiny_config(out), runner=runner)
    assert shard_bytes(out) == before
    after = {p: p.stat().st_mtime_ns for p in (out / "cache").rglob("*") if p.is_file()}
    assert after == cache_files, "a finished unit was rewritten"


def test_kill_and_resume_gives_identical_dataset(reference_build, tmp_path, hf_env):
    ref, _ = reference_build
    out = tmp_path / "killed"
    seed_models(ref, out)
    config = tmp_path / "tiny.json"
    cfg = tiny_config(out).to_dict()
    config.write_text(json.dumps(cfg))
    cmd = [sys.executable, "-m", "builders.cli", "build", "--out", str(out), "--config", str(config)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    encoded = out / "cache" / "encoded"
    deadline = time.time() + 300
    # kill -9 once some, but not all, encode units are finished
    while time.time() < deadline and proc.poll() is None:
        done = len(list(encoded.rglob("*.json"))) if encoded.exists() else 0
        if done >= 5:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the build finished before it could be killed; nothing was tested"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "cfqa").exists()
    resumed = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert shard_bytes(out) == shard_bytes(ref)


def test_dask_local_cluster_gives_identical_dataset(reference_build, tmp_path, hf_env):
    ref, _ = reference_build
    out = tmp_path / "dask"
    seed_models(ref, out)
    with Runner(workers=2) as runner:
        assert runner.distributed
        build(tiny_config(out, workers=2), runner=runner)
    assert shard_bytes(out) == shard_bytes(ref)


def test_config_rejects_bad_values(tmp_path):
    with pytest.raises(ValueError, match="tasks"):
        BuildConfig(tasks=("cls", "pose"))
    with pytest.raises(ValueError, match="profile"):
        BuildConfig(profile="huge")
    bad = tmp_path / "c.toml"
    bad.write_text('profile = "mini"\ncolour = "red"\n')
    with pytest.raises(ValueError, match="colour"):
        BuildConfig.from_file(bad)


def test_push_accepts_a_build_folder(reference_build, hf_env):
    """`cfqa push OUT REPO --dry-run` on a build folder plans the upload of OUT/cfqa, offline, no token."""
    from typer.testing import CliRunner

    from builders.cli import app

    out, _ = reference_build
    result = CliRunner().invoke(app, ["push", str(out), "someone/cfqa-mini", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "README.md" in result.output
    assert "compressed-hevc" in result.output
    assert "dry run: nothing uploaded" in result.output


def test_remote_out_is_built_locally_and_published(reference_build, tmp_path, hf_env):
    """An fsspec URL as --out: the build runs in a local working folder, then dataset + report are copied."""
    import fsspec

    ref, _ = reference_build
    work = tmp_path / "work"
    seed_models(ref, work)
    url = "memory://cfqa-test/remote-out"
    summary = build(tiny_config(url, work=str(work)))
    assert summary["published"] == url
    fs = fsspec.filesystem("memory")
    published = {p.split("remote-out/", 1)[1]: fs.cat_file(p) for p in fs.find("/cfqa-test/remote-out")}
    local = {f"cfqa/{k}": v for k, v in shard_bytes(work).items()}
    assert {k: v for k, v in published.items() if k.startswith("cfqa/")} == local
    assert "report/index.md" in published and "build_config.json" in published
    assert not any(k.startswith("cache/") for k in published)
