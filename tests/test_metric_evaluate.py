"""The `evaluate` module cfqa_metric/cfqa_metric.py: offline loading, compute, add_batch, doctests."""

import doctest
import os
import re
from pathlib import Path

import numpy as np
import pytest

import cfqa_metric

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def evaluate_offline(tmp_path_factory):
    """`evaluate` with a throwaway HF_HOME and every Hub access switched off."""
    home = tmp_path_factory.mktemp("hf_home")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {
            "HF_HOME": str(home),
            "HF_MODULES_CACHE": str(home / "modules"),
            "HF_METRICS_CACHE": str(home / "metrics"),
            "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
            "HF_EVALUATE_OFFLINE": "1",
        }.items():
            mp.setenv(key, value)
        import evaluate

        # evaluate reads its cache paths at import time; another test may have imported it already.
        mp.setattr(evaluate.config, "HF_MODULES_CACHE", home / "modules")
        mp.setattr(evaluate.config, "HF_METRICS_CACHE", home / "metrics")
        mp.setattr(evaluate.config, "HF_EVALUATE_OFFLINE", True)
        mp.chdir(REPO_ROOT)
        yield evaluate


@pytest.fixture(scope="module")
def module(evaluate_offline):
    return evaluate_offline.load("cfqa_metric")


def _rows(seed=0):
    rng = np.random.default_rng(seed)
    n = 4 * 10 * 6
    ids = np.repeat([f"o{i}" for i in range(40)], 6)
    tasks = np.repeat(["cls", "seg"], n // 2)
    codecs = np.tile(np.repeat(["hm", "vtm"], 60), 2)
    refs = rng.normal(size=n).round(1)
    preds = refs + rng.normal(0, 0.7, n)
    return {
        "predictions": preds.tolist(),
        "references": refs.tolist(),
        "reference_ids": ids.tolist(),
        "tasks": tasks.tolist(),
        "codecs": codecs.tolist(),
    }


def test_load_from_repo_root_and_compute_equals_correlate(module):
    rows = _rows()
    got = module.compute(**rows)
    want = cfqa_metric.correlate(
        rows["predictions"], rows["references"], rows["reference_ids"], rows["tasks"], rows["codecs"]
    )
    assert got == want
    assert set(got["cells"]) == {"cls/hm", "cls/vtm", "seg/hm", "seg/vtm"}


def test_add_batch_then_compute_gives_the_same_numbers(module):
    rows = _rows(seed=1)
    whole = module.compute(**rows, protocol="pooled", bootstrap=50, seed=3)
    for start in range(0, len(rows["predictions"]), 70):
        module.add_batch(**{k: v[start : start + 70] for k, v in rows.items()})
    assert module.compute(protocol="pooled", bootstrap=50, seed=3) == whole


def test_options_pass_through(module):
    rows = _rows(seed=2)
    res = module.compute(**rows, fit="logistic4", magnitude=True, lower_better=True, bootstrap=20)
    assert res["sign"] == 1.0 and "plcc_fitted" in res["cells"]["seg/vtm"] and "srocc_ci_low" in res
    with pytest.raises(ValueError, match="unknown protocol"):
        module.compute(**rows, protocol="global")
    bad = dict(rows, predictions=[float("nan")] + rows["predictions"][1:])
    with pytest.raises(ValueError, match=r"predictions\[0\] is nan"):
        module.compute(**bad)


def test_single_cell_configuration_and_module_path(evaluate_offline, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MODULE_PATH must work from anywhere
    single = evaluate_offline.load(cfqa_metric.MODULE_PATH, "single_cell")
    rows = _rows(seed=3)
    res = single.compute(
        predictions=rows["predictions"], references=rows["references"], reference_ids=rows["reference_ids"]
    )
    assert list(res["cells"]) == ["all/all"]
    with pytest.raises(ValueError, match="unknown configuration"):
        evaluate_offline.load(cfqa_metric.MODULE_PATH, "nonsense")


def test_docstring_examples_run(evaluate_offline):
    from cfqa_metric import cfqa_metric as module_file

    parser = doctest.DocTestParser()
    test = parser.get_doctest(module_file._KWARGS_DESCRIPTION, {}, "cfqa_metric._KWARGS_DESCRIPTION", None, 0)
    assert len(test.examples) >= 6
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


def test_module_file_has_one_import_per_line():
    # evaluate's import scanner reads `import x` / `from x import y` line by line.
    source = (Path(cfqa_metric.MODULE_PATH) / "cfqa_metric.py").read_text()
    imports = [line for line in source.splitlines() if re.match(r"^(import|from)\s", line)]
    assert imports == ["import datasets", "import evaluate", "import cfqa_metric"]
    assert os.path.isfile(Path(cfqa_metric.MODULE_PATH) / "README.md")


def test_card_table_is_the_published_csv():
    card = (Path(cfqa_metric.MODULE_PATH) / "README.md").read_text()
    names = {"HM": "hm", "VTM": "vtm", "Hyperprior multi-task": "hyperprior_multi_task"}
    names["Hyperprior task-specific"] = "hyperprior_task_specific"
    table = cfqa_metric.published_table().set_index(["codec", "task", "metric"])
    rows = [
        line for line in card.splitlines() if line.startswith("| ") and line.split("|")[1].strip() in names
    ]
    assert len(rows) == 12
    for line in rows:
        codec, task, *cells = (c.strip() for c in line.strip("|").split("|"))
        for metric, cell in zip(("mse", "cosine", "cka"), cells, strict=True):
            plcc, srocc = (float(v) for v in cell.split("/"))
            want = table.loc[(names[codec], task, metric)]
            assert (plcc, srocc) == (want.plcc, want.srocc)
