"""Importer of the official release: a fabricated tree in the documented layout, and broken variants of it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import datasets
import numpy as np
import pytest
from typer.testing import CliRunner

from cfqa_dataset import ReleaseError, import_release, iter_pairs, verify
from cfqa_dataset.cli import app
from cfqa_dataset.synthetic import make_release

pytestmark = pytest.mark.usefixtures("cfqa_hf_offline")

SHAPES = {"cls": (1, 1, 5, 8), "seg": (2, 1, 4, 8)}
HM = "compressed_feat/hm"
HP = "compressed_feat/hyperprior_multi_task"
LAMBDA_FOLDER = "lambda{}_epochs800_lr0.0001_bs128_patch256-256"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return make_release(tmp_path_factory.mktemp("release") / "cfqa_dataset", SHAPES, 3)


@pytest.fixture
def release(pristine, tmp_path):
    return Path(shutil.copytree(pristine, tmp_path / "release"))


def refused(release: Path, out: Path, match: str, **kw) -> ReleaseError:
    with pytest.raises(ReleaseError, match=match) as info:
        import_release(release, out, **kw)
    assert not out.exists() and not list(out.parent.glob(".cfqa*")), "nothing may be written on failure"
    return info.value


def test_import_round_trip(release, tmp_path):
    out = tmp_path / "cfqa"
    report = import_release(release, out)
    assert report.ok and report.originals == 6 and report.compressed == 36
    assert verify(out).ok
    comp = datasets.load_dataset(str(out), "cls", split="compressed")
    rows = {
        r["id"]: r for r in comp.select_columns(["id", "raw", "label", "codec_param", "provenance"]).to_list()
    }
    # Log lines of a feature follow ascending codec parameter; rate_index 0 = highest rate.
    log = [ln.split() for ln in (release / "labels/hm/cls.txt").read_text().splitlines()]
    assert [float(t[1]) for t in log if t[0] == "cls_img_001.npy"] == [
        rows[f"cls/hm/{r}/cls_img_001"]["raw"] for r in range(3)
    ]
    assert [rows[f"cls/hm/{r}/cls_img_001"]["codec_param"] for r in range(3)] == [2.0, 4.0, 6.0]
    assert [rows[f"cls/hyperprior_multi_task/{r}/cls_img_001"]["codec_param"] for r in range(3)] == [
        0.005,
        0.0025,
        0.001,
    ]
    r0 = rows["cls/hm/0/cls_img_000"]
    assert r0["label"] == r0["raw"] - 1.0  # cls originals have rank 1 by construction
    assert json.loads(r0["provenance"])["reference_log"]["cosine"] == 0.99
    # Features are the release's files, bit for bit.
    for pair in iter_pairs(out, tasks="seg", codecs="hm"):
        qp = int(pair.meta["codec_param"])
        src = np.load(release / HM / "seg" / f"QP{qp}" / f"{pair.meta['original_id']}.npy")
        assert pair.compressed.tobytes() == src.tobytes()
        assert pair.label is None and pair.meta["raw"] is not None  # seg originals' mIoU not in the release
    card = (out / "README.md").read_text()
    assert "seg: not in the release (label empty, raw kept)" in card and "PARTIAL" not in card


def test_subset_and_original_results_and_bitstreams(release, tmp_path):
    (release / "labels/original").mkdir()
    (release / "labels/original/seg.txt").write_text("".join(f"seg_img_{i:03d}.jpg 80.0\n" for i in range(3)))
    (release / HM / "seg/QP2/seg_img_000.bin").write_bytes(b"x" * 16)
    report = import_release(release, tmp_path / "cfqa", tasks=["seg"], codecs=["hm"])
    assert report.ok and report.compressed == 9
    comp = datasets.load_dataset(str(tmp_path / "cfqa"), "seg", split="compressed")
    comp = comp.select_columns(["id", "codec", "raw", "label", "bpfp"]).to_pandas()
    assert set(comp["codec"]) == {"hm"}
    row = comp.set_index("id").loc["seg/hm/0/seg_img_000"]
    assert row["label"] == pytest.approx(80.0 - row["raw"])
    assert row["bpfp"] == pytest.approx(16 * 8 / 64)
    assert datasets.get_dataset_config_names(str(tmp_path / "cfqa")) == ["seg", "seg-hm"]


def _truncate(path: Path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


BROKEN = {
    "missing rate folder": (
        lambda r: shutil.rmtree(r / HM / "seg/QP4"),
        r"compressed_feat/hm/seg/: 2 rate folders, expected 3; missing qp 4 \(present for other tasks\)",
    ),
    "truncated npy": (
        lambda r: _truncate(r / HM / "cls/QP4/cls_img_001.npy"),
        r"compressed_feat/hm/cls/QP4/cls_img_001.npy: corrupt or truncated",
    ),
    "wrong shape": (
        lambda r: np.save(r / HM / "cls/QP2/cls_img_002.npy", np.zeros((1, 1, 6, 8), np.float32)),
        r"cls_img_002.npy: shape \(1, 1, 6, 8\), expected \(1, 1, 5, 8\)",
    ),
    "float64": (
        lambda r: np.save(r / "org_feat/cls/cls_img_000.npy", np.zeros((1, 1, 5, 8))),
        r"org_feat/cls/cls_img_000.npy: dtype float64, expected float32",
    ),
    "nan": (
        lambda r: np.save(
            r / HP / "seg" / LAMBDA_FOLDER.format(0.001) / "seg_img_001.npy",
            np.full((2, 1, 4, 8), np.nan, np.float32),
        ),
        r"seg_img_001.npy: 64 NaN/inf value\(s\)",
    ),
    "duplicate name": (
        lambda r: shutil.copy(r / HM / "cls/QP2/cls_img_000.npy", r / HM / "cls/QP2/cls_img_000.v2.npy"),
        r"cls_img_000.v2.npy: duplicate feature name 'cls_img_000'",
    ),
    "duplicate in list": (
        lambda r: (r / "lists/seg.txt").write_text((r / "lists/seg.txt").read_text() + "seg_img_000.jpg\n"),
        r"lists/seg.txt:4: duplicate name 'seg_img_000' \(first on line 1\)",
    ),
    "orphan original": (
        lambda r: np.save(r / "org_feat/cls/cls_img_999.npy", np.zeros((1, 1, 5, 8), np.float32)),
        r"org_feat/cls/cls_img_999.npy: orphan feature 'cls_img_999', not in lists/cls.txt",
    ),
    "missing original": (
        lambda r: (r / "org_feat/seg/seg_img_002.npy").unlink(),
        r"org_feat/seg/seg_img_002.npy: missing original",
    ),
    "unknown name in log": (
        lambda r: (r / "labels/hm/cls.txt").write_text(
            (r / "labels/hm/cls.txt").read_text() + "dog.npy 1 0.1 0.9 0.9\n"
        ),
        r"labels/hm/cls.txt:10: names unknown feature 'dog'",
    ),
    "missing list file": (
        lambda r: (r / "lists/cls.txt").unlink(),
        r"lists/cls.txt: missing list file of task cls",
    ),
    "wrong number of log lines": (
        lambda r: (r / "labels/hm/seg.txt").write_text(
            "".join((r / "labels/hm/seg.txt").read_text().splitlines(keepends=True)[1:])
        ),
        r"labels/hm/seg.txt: feature 'seg_img_000' has 2 line\(s\) \(lines \[1, 2\]\), expected one per rate "
        r"folder \(3\)",
    ),
    "missing log": (
        lambda r: (r / "labels/hyperprior_multi_task/cls.txt").unlink(),
        r"labels/hyperprior_multi_task/cls.txt: missing label log",
    ),
    "bad rate folder": (
        lambda r: (r / HM / "cls/QP_high").mkdir(),
        r"compressed_feat/hm/cls/QP_high: not a rate folder",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_release_is_refused_with_a_precise_report(release, tmp_path, case):
    damage, message = BROKEN[case]
    damage(release)
    err = refused(release, tmp_path / "cfqa", message)
    assert err.report.errors, case


def test_report_lists_every_problem(release, tmp_path):
    for case in ("truncated npy", "orphan original", "nan"):
        BROKEN[case][0](release)
    err = refused(release, tmp_path / "cfqa", "truncated")
    text = err.report.format()
    assert "3 error(s)" in text and "orphan" in text and "NaN" in text


def test_unparseable_log_line_is_a_warning_like_the_reference(release, tmp_path):
    log = release / "labels/hm/cls.txt"
    log.write_text("# name label mse cos cka\n" + log.read_text())
    report = import_release(release, tmp_path / "cfqa")
    assert report.ok and any("labels/hm/cls.txt:1: not" in w for w in report.warnings)


def test_partial_import_keeps_the_valid_rows_and_says_so(release, tmp_path):
    BROKEN["truncated npy"][0](release)
    BROKEN["nan"][0](release)
    out = tmp_path / "cfqa"
    report = import_release(release, out, partial=True)
    assert len(report.errors) == 2 and report.compressed == 34
    meta = json.loads((out / "cfqa_meta.json").read_text())
    assert meta["partial"] is True
    excluded = meta["notes"]["excluded (partial import)"]
    assert any("cls_img_001.npy: corrupt" in e for e in excluded) and any("NaN" in e for e in excluded)
    assert "PARTIAL DATASET" in (out / "README.md").read_text()
    assert datasets.load_dataset(str(out), "seg", split="compressed").num_rows == 17


def test_cli_import_check_and_refusal(release, tmp_path):
    runner = CliRunner()
    out = tmp_path / "cfqa"
    res = runner.invoke(app, ["import", str(release), str(out), "--check"])
    assert res.exit_code == 0, res.output
    assert "release is valid" in res.output and not out.exists()
    res = runner.invoke(app, ["import", str(release), str(out), "--codec", "hm", "--max-shard-mb", "1"])
    assert res.exit_code == 0, res.output
    assert "wrote 6 originals and 18 compressed rows" in res.output
    res = runner.invoke(app, ["verify", str(out)])
    assert res.exit_code == 0 and "OK" in res.output
    BROKEN["missing list file"][0](release)
    res = runner.invoke(app, ["import", str(release), str(tmp_path / "other")])
    assert res.exit_code == 1 and "missing list file" in res.output and "refused" in res.output
    assert not (tmp_path / "other").exists()


def test_custom_list_and_label_locations(release, tmp_path):
    (release / "meta").mkdir()
    for task in SHAPES:
        shutil.move(release / f"lists/{task}.txt", release / f"meta/{task}_names.txt")
    report = import_release(release, tmp_path / "cfqa", lists="meta/{task}_names.txt")
    assert report.ok
    err = refused(release, tmp_path / "x" / "cfqa", "missing list file")
    assert "lists/cls.txt" in str(err)


def test_missing_list_gives_one_error_not_a_flood_and_partial_skips_the_task(release, tmp_path):
    (release / "lists/cls.txt").unlink()
    err = refused(release, tmp_path / "cfqa", "missing list file")
    assert len(err.report.errors) == 1, err.report.errors
    report = import_release(release, tmp_path / "cfqa", partial=True)
    assert report.originals == 3 and report.compressed == 18
    assert datasets.get_dataset_config_names(str(tmp_path / "cfqa"))[0] == "seg"
