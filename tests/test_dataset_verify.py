"""sha256 manifest and `verify` / `cfqa verify`."""

from __future__ import annotations

import subprocess

import pytest
from typer.testing import CliRunner

from cfqa_dataset import verify, write_dataset
from cfqa_dataset.cli import app
from cfqa_dataset.manifest import read_manifest, write_manifest
from cfqa_dataset.synthetic import synthetic_rows

pytestmark = pytest.mark.usefixtures("cfqa_hf_offline")


@pytest.fixture
def out(tmp_path):
    return write_dataset(tmp_path / "cfqa", *synthetic_rows({"cls": (1, 1, 5, 8)}, 2))


def test_clean_folder_verifies_and_is_sha256sum_compatible(out):
    report = verify(out)
    assert report.ok and report.checked == len(read_manifest(out / "MANIFEST.sha256")) == 5
    res = subprocess.run(["sha256sum", "-c", "MANIFEST.sha256"], cwd=out, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_tampered_shard_is_named(out):
    shard = next(out.glob("data/cls/compressed-hm-*.parquet"))
    data = bytearray(shard.read_bytes())
    data[100] ^= 0xFF
    shard.write_bytes(bytes(data))
    report = verify(out)
    assert not report.ok
    assert any(e.startswith("data/cls/compressed-hm-00000-of-00001.parquet: sha256") for e in report.errors)


def test_missing_extra_and_cardless(out):
    (out / "stray.txt").write_text("x")
    next(out.glob("data/cls/originals-*.parquet")).unlink()
    (out / "README.md").unlink()
    errors = "\n".join(verify(out).errors)
    assert "stray.txt: not listed" in errors
    assert "data/cls/originals-00000-of-00001.parquet: listed in MANIFEST.sha256 but missing" in errors
    assert "missing dataset card (README.md)" in errors


def test_card_pattern_without_files_is_reported(out):
    for shard in out.glob("data/cls/compressed-hm-*.parquet"):
        shard.unlink()
    write_manifest(out)  # a consistent manifest cannot hide a card that points at nothing
    errors = verify(out).errors
    assert any(
        "config 'cls-hm' split 'compressed' pattern 'data/cls/compressed-hm-*.parquet'" in e for e in errors
    )


def test_malformed_manifest_and_not_a_folder(out, tmp_path):
    (out / "MANIFEST.sha256").write_text("abc  data/x.parquet\n")
    assert "MANIFEST.sha256:1: malformed manifest line" in verify(out).errors[0]
    assert "not a folder" in verify(tmp_path / "nowhere").errors[0]


def test_cli_verify_exit_codes(out):
    runner = CliRunner()
    res = runner.invoke(app, ["verify", str(out)])
    assert res.exit_code == 0 and "5 files match" in res.output
    (out / "cfqa_meta.json").write_text("{}")
    res = runner.invoke(app, ["verify", str(out)])
    assert res.exit_code == 1 and "cfqa_meta.json: sha256" in res.output
