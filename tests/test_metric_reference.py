"""cfqa_metric.reference_table on a fabricated reference log, and the published table."""

import warnings

import numpy as np
import pytest
from scipy import stats as ss

import cfqa_metric
from cfqa_metric import NaNGroupWarning, correlate, reference_table


def write_reference_files(tmp_path):
    """A cls-style log and list: extensions, junk lines, a constant, a one-row and a missing original."""
    rng = np.random.default_rng(0)
    names = [f"ILSVRC2012_val_{i:08d}" for i in range(1, 13)]
    lines = ["# codec hm task cls", "name label mse cos cka", ""]
    for i, name in enumerate(names):
        if i == 10:
            continue  # listed but never logged
        n_rows = 1 if i == 9 else 10
        for q in range(n_rows):
            label = 0.0 if i == 3 else float(rng.integers(0, 4) + q // 3)  # ties; original 3 constant
            mse = 0.5 * q + rng.normal(0, 0.3)
            cos = 1.0 - 0.01 * q + rng.normal(0, 0.002)
            cka = 1.0 - 0.02 * q + rng.normal(0, 0.004)
            lines.append(f"{name}.npy {label:g} {mse:.6f} {cos:.6f} {cka:.6f}")
        lines.append(f"{name}.npy average n/a n/a n/a")  # does not parse: skipped
    lines.append("unlisted_image.npy 3 0.1 0.9 0.9")  # not in the list: ignored
    lines.append("Mean PLCC 0.5")
    rng.shuffle(lines)
    log = tmp_path / "hm_cls.txt"
    log.write_text("\n".join(lines) + "\n")
    lst = tmp_path / "cls_list.txt"
    lst.write_text("".join(f"{n}.JPEG {k}\n" for k, n in enumerate(names)) + "\n")
    return log, lst, names


@pytest.fixture
def reference_files(tmp_path):
    return write_reference_files(tmp_path)


def _straightforward(log, lst):
    """An independent, literal reading of the spec's evaluation protocol."""
    rows = []
    for line in open(log):
        parts = line.split()
        try:
            rows.append((parts[0].split(".")[0], *map(float, parts[1:5])))
        except (IndexError, ValueError):
            continue
    originals = [line.split()[0].split(".")[0] for line in open(lst) if line.strip()]
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for col, metric in enumerate(("mse", "cosine", "cka"), start=2):
            plccs, sroccs = [], []
            for name in originals:
                sel = [r for r in rows if r[0] == name]
                label = np.array([r[1] for r in sel])
                value = np.array([r[col] for r in sel])
                plccs.append(ss.pearsonr(label, value)[0] if len(sel) > 1 else np.nan)
                sroccs.append(ss.spearmanr(label, value)[0] if len(sel) > 1 else np.nan)
            out[metric] = {"plcc": np.nanmean(plccs), "srocc": np.nanmean(sroccs)}
    return out


def test_reference_table_reproduces_the_protocol_number_for_number(reference_files):
    log, lst, names = reference_files
    got = reference_table(log, lst)
    want = _straightforward(log, lst)
    for metric in ("mse", "cosine", "cka"):
        assert got[metric]["plcc"] == want[metric]["plcc"]
        assert got[metric]["srocc"] == want[metric]["srocc"]
        assert got[metric]["n_groups"] == len(names)
        assert got[metric]["n_nan_groups"] == 3  # constant, one row, missing
    assert got["mse"]["srocc"] > 0 > got["cosine"]["srocc"]


def test_vectorised_protocol_agrees_with_the_reference_table(reference_files):
    log, lst, _ = reference_files
    rows = cfqa_metric.read_log(log)
    listed = set(cfqa_metric.read_list(lst))
    rows = [r for r in rows if r.name in listed]
    table = reference_table(log, lst)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NaNGroupWarning)
        for metric in ("mse", "cosine", "cka"):
            res = correlate(
                [getattr(r, metric) for r in rows], [r.label for r in rows], [r.name for r in rows]
            )
            assert res["plcc"] == pytest.approx(table[metric]["plcc"], rel=1e-12)
            assert res["srocc"] == pytest.approx(table[metric]["srocc"], rel=1e-12)


def test_reference_inputs_that_cannot_be_read(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    junk = tmp_path / "junk.txt"
    junk.write_text("name label mse cos cka\nfoo 1 2\n")
    with pytest.raises(ValueError, match="empty.txt: no original names"):
        cfqa_metric.read_list(empty)
    with pytest.raises(ValueError, match="junk.txt: no line parses"):
        cfqa_metric.read_log(junk)


def test_published_table_holds_the_papers_numbers():
    table = cfqa_metric.published_table()
    assert len(table) == 4 * 3 * 3
    assert set(table.codec) == {"hm", "vtm", "hyperprior_multi_task", "hyperprior_task_specific"}
    row = table[(table.codec == "hm") & (table.task == "cls") & (table.metric == "cosine")].iloc[0]
    assert (row.plcc, row.srocc) == (-0.7368, -0.9116)
    row = table[(table.codec == "hyperprior_task_specific") & (table.task == "dpt") & (table.metric == "mse")]
    assert (row.plcc.item(), row.srocc.item()) == (-0.0787, 0.4915)
    assert table[["plcc", "srocc"]].abs().le(1).all().all()
