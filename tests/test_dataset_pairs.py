"""iter_pairs: grouping by original, selection, the three kinds of `data`."""

from __future__ import annotations

import datasets
import numpy as np
import pytest

from cfqa_dataset import Pair, iter_pairs, write_dataset
from cfqa_dataset.synthetic import synthetic_rows

pytestmark = pytest.mark.usefixtures("cfqa_hf_offline")

SHAPES = {"cls": (1, 1, 5, 8), "dpt": (2, 4, 3, 8)}


@pytest.fixture(scope="module")
def source_rows():
    o, c = synthetic_rows(SHAPES, 3)
    return list(o), list(c)


@pytest.fixture
def folder(tmp_path, source_rows):
    o, c = source_rows
    # Interleave codecs/originals so grouping cannot rely on storage order.
    shuffled = [c[i] for i in np.random.default_rng(1).permutation(len(c))]
    return write_dataset(tmp_path / "cfqa", iter(o), iter(shuffled))


def _check_grouped(pairs: list[Pair]):
    seen, current = set(), None
    for p in pairs:
        key = (p.meta["task"], p.meta["original_id"])
        if key != current:
            assert key not in seen, f"group {key} is split"
            seen.add(key)
            current, first = key, p.original
        assert p.original is first  # one array object per group


def test_all_pairs_bit_exact_and_grouped(folder, source_rows):
    o, c = source_rows
    pairs = list(iter_pairs(folder))
    assert len(pairs) == len(c)
    _check_grouped(pairs)
    by_id = {r["id"]: r for r in c}
    originals = {(r["task"], r["original_id"]): r["feature"] for r in o}
    for p in pairs:
        src = by_id[p.meta["id"]]
        assert p.compressed.dtype == np.float32 and p.original.dtype == np.float32
        assert np.array_equal(p.compressed, src["feature"])
        assert np.array_equal(p.original, originals[(src["task"], src["original_id"])])
        assert p.label == pytest.approx(src["label"]) and p.meta["label"] == p.label
        assert "feature" not in p.meta and p.meta["codec_param_name"] in {"qp", "lambda"}


def test_selection_of_tasks_and_codecs(folder):
    pairs = list(iter_pairs(folder, tasks="dpt", codecs=["hm"]))
    assert len(pairs) == 9
    assert {(p.meta["task"], p.meta["codec"]) for p in pairs} == {("dpt", "hm")}
    assert pairs[0].original.shape == (2, 4, 3, 8)
    _check_grouped(pairs)
    with pytest.raises(ValueError, match="unknown task"):
        list(iter_pairs(folder, tasks="det"))
    with pytest.raises(ValueError, match="none of the codecs"):
        list(iter_pairs(folder, codecs="vtm"))


def test_from_loaded_datasetdict_and_mapping(folder):
    dd = datasets.load_dataset(str(folder), "cls")
    assert len(list(iter_pairs(dd))) == 18
    assert {p.meta["codec"] for p in iter_pairs(dd, codecs="hyperprior_multi_task")} == {
        "hyperprior_multi_task"
    }
    both = {"cls": dd, "dpt": datasets.load_dataset(str(folder), "dpt")}
    pairs = list(iter_pairs(both, tasks=["dpt"]))
    assert len(pairs) == 18 and {p.meta["task"] for p in pairs} == {"dpt"}


def test_folder_without_card_is_refused(folder):
    (folder / "README.md").unlink()
    with pytest.raises(ValueError, match="no dataset card"):
        list(iter_pairs(folder))


def test_streaming_dataset_is_refused_with_a_hint(folder):
    def gen():
        yield {"original_id": "x"}

    stream = datasets.IterableDataset.from_generator(gen)
    dd = datasets.IterableDatasetDict(originals=stream, compressed=stream)
    with pytest.raises(TypeError, match="random access"):
        list(iter_pairs(dd))


def test_orphan_compressed_row_is_reported(folder):
    dd = datasets.load_dataset(str(folder), "cls")
    dd = datasets.DatasetDict(originals=dd["originals"].select([0]), compressed=dd["compressed"])
    with pytest.raises(ValueError, match="not in the originals split"):
        list(iter_pairs(dd))


def test_indices_mapping_and_read_only_views(folder, source_rows):
    o, c = source_rows
    dd = datasets.load_dataset(str(folder), "dpt")
    dd = datasets.DatasetDict(
        originals=dd["originals"].select([2, 0, 1]), compressed=dd["compressed"].shuffle(seed=0)
    )
    pairs = list(iter_pairs(dd))
    assert [p.meta["original_id"] for p in pairs[::6]] == ["dpt_0002", "dpt_0000", "dpt_0001"]
    by_id = {r["id"]: r["feature"] for r in c}
    originals = {r["original_id"]: r["feature"] for r in o if r["task"] == "dpt"}
    for p in pairs:
        assert np.array_equal(p.compressed, by_id[p.meta["id"]])
        assert np.array_equal(p.original, originals[p.meta["original_id"]])
    with pytest.raises(ValueError, match="read-only"):
        pairs[0].original[...] = 0  # the shared original cannot be corrupted by a metric


def test_hub_repo_id_loads_only_the_selected_codec_configs(folder, monkeypatch):
    calls = []
    real_names, real_load = datasets.get_dataset_config_names, datasets.load_dataset

    def names(path, **kw):
        assert path == "user/cfqa"
        return real_names(str(folder))

    def load(path, name=None, **kw):
        assert path == "user/cfqa"
        calls.append(name)
        return real_load(str(folder), name, **kw)

    monkeypatch.setattr(datasets, "get_dataset_config_names", names)
    monkeypatch.setattr(datasets, "load_dataset", load)
    pairs = list(iter_pairs("user/cfqa", codecs=["hm"], load_kwargs={"revision": None}))
    assert calls == ["cls-hm", "dpt-hm"] and len(pairs) == 18
