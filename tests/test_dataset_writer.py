"""Writer, schema, card and loading of a CFQA dataset folder (offline, tiny tensors)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import datasets
import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from cfqa_dataset import features_for, write_dataset
from cfqa_dataset.layout import scan_shards
from cfqa_dataset.schema import COLUMNS, arrow_schema, features_from_arrow
from cfqa_dataset.synthetic import synthetic_rows

pytestmark = pytest.mark.usefixtures("cfqa_hf_offline")

SHAPES = {"cls": (1, 1, 5, 8), "seg": (2, 1, 4, 8)}


def rows(n=3, shapes=SHAPES, **kw):
    return synthetic_rows(shapes, n, **kw)


def materialise(n=3, shapes=SHAPES, **kw):
    o, c = rows(n, shapes, **kw)
    return list(o), list(c)


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def written(tmp_path):
    o, c = rows()
    return write_dataset(tmp_path / "cfqa", o, c, notes={"profile": "unit-test", "codec ladder": "QP 2/4/6"})


def test_schema_round_trip_through_arrow_metadata():
    feats = features_for((2, 4, 3, 8))
    schema = arrow_schema(feats)
    assert schema.names == list(COLUMNS)
    assert features_from_arrow(schema) == feats
    with pytest.raises(ValueError, match="4 positive ints"):
        features_for((1, 2, 3))


def test_load_configs_splits_and_bit_exact_float32(written):
    originals, compressed = materialise()
    ds = datasets.load_dataset(str(written), "seg")
    assert set(ds) == {"originals", "compressed"}
    assert ds["originals"].num_rows == 3 and ds["compressed"].num_rows == 18
    assert ds["compressed"].features["feature"] == datasets.Array4D(shape=(2, 1, 4, 8), dtype="float32")
    comp = ds["compressed"].with_format("numpy")
    expected = {r["id"]: r for r in compressed}
    for i in range(comp.num_rows):
        row = comp[i]
        src = expected[row["id"]]
        assert row["feature"].dtype == np.float32
        assert row["feature"].tobytes() == src["feature"].tobytes()  # bit-exact
        assert row["label"] == pytest.approx(src["label"])
        assert row["source_name"] == f"{src['original_id']}.png"  # filled from the original
    orig = ds["originals"].with_format("numpy")[0]
    assert orig["feature"].tobytes() == originals[3]["feature"].tobytes()  # seg originals come after cls
    meta = ds["originals"].select_columns(["codec", "rate_index", "label", "raw"]).to_list()[0]
    assert meta == {"codec": None, "rate_index": None, "label": 0.0, "raw": originals[3]["raw"]}


def test_per_codec_config_reads_only_its_shards(written):
    comp = datasets.load_dataset(str(written), "cls-hm", split="compressed")
    assert set(comp["codec"]) == {"hm"} and comp.num_rows == 9
    assert datasets.get_dataset_config_names(str(written)) == [
        "cls",
        "cls-hm",
        "cls-hyperprior_multi_task",
        "seg",
        "seg-hm",
        "seg-hyperprior_multi_task",
    ]


def test_streaming_gives_float32_arrays(written):
    stream = datasets.load_dataset(str(written), "seg", split="compressed", streaming=True).with_format(
        "numpy"
    )
    first = next(iter(stream))
    assert first["feature"].dtype == np.float32 and first["feature"].shape == (2, 1, 4, 8)
    assert sum(1 for _ in stream) == 18


def test_load_by_folder_name_from_parent_uses_default_config(written, monkeypatch):
    monkeypatch.chdir(written.parent)
    ds = datasets.load_dataset("cfqa")
    assert set(ds["originals"]["task"]) == {"cls"}  # the first task is the default config


def test_card_yaml_declares_configs_features_splits_licence(written):
    text = (written / "README.md").read_text()
    header = yaml.safe_load(text.split("---\n")[1])
    assert header["license"] == "cc-by-nc-4.0"
    names = [c["config_name"] for c in header["configs"]]
    assert names[0] == "cls" and header["configs"][0]["default"] is True and "seg-hm" in names
    infos = {i["config_name"]: i for i in header["dataset_info"]}
    splits = {s["name"]: s["num_examples"] for s in infos["seg-hm"]["splits"]}
    assert splits == {"originals": 3, "compressed": 9}
    shape = next(f for f in infos["seg"]["features"] if f["name"] == "feature")["dtype"]["array4_d"]["shape"]
    assert shape == [2, 1, 4, 8]
    body = text.split("---\n", 2)[2]
    for needle in (
        "@inproceedings",
        "CC BY-NC 4.0",
        "## Labels",
        "mIoU",
        "rate_index",
        "qp = 2",
        "unit-test",
        "QP 2/4/6",
        "lambda = 0.005",
    ):
        assert needle in body, needle


def test_deterministic_bytes(tmp_path):
    a = write_dataset(tmp_path / "a" / "cfqa", *rows(), max_shard_bytes=4000, row_group_bytes=600)
    b = write_dataset(tmp_path / "b" / "cfqa", *rows(), max_shard_bytes=4000, row_group_bytes=600)
    assert tree_bytes(a) == tree_bytes(b)
    # Rewriting over an existing dataset folder replaces it, still identical.
    write_dataset(a, *rows(), max_shard_bytes=4000, row_group_bytes=600)
    assert tree_bytes(a) == tree_bytes(b)


def test_shards_are_bounded_and_rotate(tmp_path):
    shapes = {"cls": (1, 1, 16, 64)}
    limit = 30_000
    out = write_dataset(tmp_path / "cfqa", *rows(8, shapes), max_shard_bytes=limit, row_group_bytes=8192)
    shards = scan_shards(out)
    hm = [k for k in shards if k.codec == "hm"][0]
    assert len(shards[hm]) > 1
    assert shards[hm][0].endswith(f"-00000-of-{len(shards[hm]):05d}.parquet")
    for files in shards.values():
        for rel in files:
            size = (out / rel).stat().st_size
            assert size <= limit, (rel, size)
            assert pq.ParquetFile(out / rel).metadata.num_row_groups >= 1
    assert datasets.load_dataset(str(out), "cls-hm", split="compressed").num_rows == 24


def test_compressed_storage_is_small_vs_npy(tmp_path):
    shapes = {"cls": (1, 1, 64, 256)}
    o, c = materialise(4, shapes)
    out = write_dataset(tmp_path / "cfqa", iter(o), iter(c))
    disk = sum(
        (out / f).stat().st_size for k, fs in scan_shards(out).items() if k.split == "compressed" for f in fs
    )
    npy = sum(r["feature"].nbytes + 128 for r in c)
    assert disk / npy <= 0.4, disk / npy


def test_failure_midway_leaves_nothing(tmp_path):
    o, c = materialise()

    def broken():
        yield from c[:5]
        raise RuntimeError("pipeline killed")

    with pytest.raises(RuntimeError, match="killed"):
        write_dataset(tmp_path / "cfqa", iter(o), broken())
    assert os.listdir(tmp_path) == []


def test_existing_foreign_folder_is_not_replaced(tmp_path):
    (tmp_path / "cfqa").mkdir()
    (tmp_path / "cfqa" / "precious.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not a CFQA dataset"):
        write_dataset(tmp_path / "cfqa", *rows())
    assert (tmp_path / "cfqa" / "precious.txt").exists()


def _bad(o, c, which, index, **change):
    rows_ = o if which == "o" else c
    rows_[index] = {**rows_[index], **change}
    return o, c


@pytest.mark.parametrize(
    ("which", "change", "match"),
    [
        ("o", {"feature": np.zeros((1, 1, 5, 8), np.float64)}, "dtype float64"),
        (
            "c",
            {"feature": np.zeros((1, 1, 6, 8), np.float32)},
            r"shape \(1, 1, 6, 8\), expected \(1, 1, 5, 8\)",
        ),
        ("c", {"feature": np.full((1, 1, 5, 8), np.nan, np.float32)}, "NaN"),
        ("c", {"original_id": "nope"}, "not among the originals"),
        ("c", {"id": "cls/hm/0/cls_0000"}, "duplicate id"),
        ("c", {"codec": "h-m"}, "codec name"),
        ("c", {"rate_index": -1}, "rate_index"),
        ("c", {"label": float("inf")}, "not finite"),
        ("c", {"qp": 3}, "unknown column"),
        ("o", {"task": "det"}, "task 'det'"),
        ("o", {"original_id": "cls_0000"}, "duplicate original_id"),
    ],
)
def test_bad_rows_raise_naming_the_row(tmp_path, which, change, match):
    o, c = materialise()
    o, c = _bad(o, c, which, 1, **change)
    with pytest.raises(ValueError, match=match) as info:
        write_dataset(tmp_path / "cfqa", iter(o), iter(c))
    assert "row 1" in str(info.value)
    assert os.listdir(tmp_path) == []


def test_inconsistent_rate_point_param_is_refused(tmp_path):
    o, c = materialise()
    # c[0] is cls_0000/hm/rate 0 (QP 2); c[6] is cls_0001/hm/rate 0: the same rate point must keep its QP.
    with pytest.raises(ValueError, match="earlier rows have"):
        write_dataset(tmp_path / "cfqa", iter(o), iter([c[0], {**c[6], "codec_param": 99.0}]))


def test_meta_and_partial_flag(tmp_path):
    out = write_dataset(tmp_path / "cfqa", *rows(), partial=lambda: True, notes=lambda: "late notes")
    meta = json.loads((out / "cfqa_meta.json").read_text())
    assert meta["partial"] is True and meta["notes"] == "late notes"
    assert meta["tasks"]["cls"]["codecs"]["hm"]["rate_points"]["0"]["codec_param"] == 2.0
    assert "PARTIAL DATASET" in (out / "README.md").read_text()


def test_originals_only_dataset_loads_and_yields_no_pairs(tmp_path):
    from cfqa_dataset import iter_pairs

    o, _ = rows()
    out = write_dataset(tmp_path / "cfqa", o, [])
    ds = datasets.load_dataset(str(out), "seg")
    assert list(ds) == ["originals"] and ds["originals"].num_rows == 3
    assert list(iter_pairs(out)) == []
    with pytest.raises(ValueError, match="no original rows"):
        write_dataset(tmp_path / "empty", [], [])
