"""cfqa_metric.cli (`score`, `reference-table`) with typer's CliRunner; the Hub Space helper with a mock."""

import json
import sys
import types
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cfqa_metric
from cfqa_metric import NaNGroupWarning
from cfqa_metric.cli import app

sys.path.insert(0, str(Path(__file__).parent))
from test_metric_reference import write_reference_files  # noqa: E402
from test_metric_score import make_pairs  # noqa: E402

runner = CliRunner()


@pytest.fixture
def fake_dataset(monkeypatch):
    """`cfqa_dataset.iter_pairs` replaced by in-memory pairs, recording what it was asked for."""
    calls = []
    pairs = make_pairs(n_originals=3, n_rates=4)

    def iter_pairs(data, tasks=None, codecs=None):
        calls.append((data, tasks, codecs))
        return iter(
            [
                p
                for p in pairs
                if (tasks is None or p.meta["task"] in tasks)
                and (codecs is None or p.meta["codec"] in codecs)
            ]
        )

    fake = types.ModuleType("cfqa_dataset")
    fake.iter_pairs = iter_pairs
    monkeypatch.setitem(sys.modules, "cfqa_dataset", fake)
    return calls, pairs


def test_score_prints_the_paper_table(fake_dataset):
    calls, pairs = fake_dataset
    result = runner.invoke(app, ["score", "--metric", "cosine", "-m", "mse", "--data", "ds"])
    assert result.exit_code == 0, result.output
    assert calls == [("ds", None, None)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NaNGroupWarning)
        want = cfqa_metric.score(["cosine", "mse"], pairs)
    out = result.output
    assert "cosine PLCC" in out and "mse KROCC" in out
    for cell in ("cls/hm", "seg/vtm"):
        task, codec = cell.split("/")
        line = next(row for row in out.splitlines() if f" {codec} " in row and f" {task} " in row)
        assert f"{want['cosine']['cells'][cell]['plcc']:.4f}" in line
        assert f"{want['mse']['cells'][cell]['srocc']:.4f}" in line
    assert f"{want['mse']['srocc']:.4f}" in next(r for r in out.splitlines() if " mean " in r)


def test_score_json_filters_and_options(fake_dataset):
    calls, pairs = fake_dataset
    result = runner.invoke(
        app,
        [
            "score",
            "-m",
            "cka",
            "--data",
            "ds",
            "--tasks",
            "seg",
            "--codecs",
            "hm,vtm",
            "--json",
            "--bootstrap",
            "5",
        ],
    )
    assert result.exit_code == 0, result.output
    assert calls == [("ds", ["seg"], ["hm", "vtm"])]
    got = json.loads(result.output)
    assert set(got) == {"cka"} and set(got["cka"]["cells"]) == {"seg/hm", "seg/vtm"}
    assert "srocc_ci_low" in got["cka"]
    want = cfqa_metric.score(["cka"], pairs, tasks=["seg"], bootstrap=5)
    assert got == json.loads(json.dumps(want))


def test_score_reports_bad_parameters(fake_dataset):
    result = runner.invoke(app, ["score", "-m", "no_such_metric", "--data", "ds"])
    assert result.exit_code != 0
    assert "unknown metric 'no_such_metric'" in result.output
    result = runner.invoke(app, ["score", "-m", "mse", "--data", "ds", "--protocol", "global"])
    assert result.exit_code != 0 and "unknown protocol" in result.output


def test_reference_table_command(tmp_path):
    log, lst, _ = write_reference_files(tmp_path)
    result = runner.invoke(app, ["reference-table", str(log), str(lst), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == json.loads(json.dumps(cfqa_metric.reference_table(log, lst)))
    table = runner.invoke(app, ["reference-table", str(log), str(lst)])
    assert table.exit_code == 0 and "cosine" in table.output and "3/12" in table.output
    missing = runner.invoke(app, ["reference-table", str(log), str(lst) + ".missing"])
    assert missing.exit_code != 0 and "no such file" in missing.output


class FakeHfApi:
    """Records what push_to_hub_space asks of the Hub; no network, no token."""

    def __init__(self):
        self.calls = []
        self.files = {}

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))
        return f"https://huggingface.co/spaces/{repo_id}"

    def upload_folder(self, *, repo_id, repo_type, folder_path, commit_message):
        self.calls.append(("upload_folder", repo_id, repo_type))
        self.files = {p.name: p.read_text() for p in Path(folder_path).iterdir()}


def test_push_to_hub_space_uploads_module_card_and_app():
    api = FakeHfApi()
    url = cfqa_metric.push_to_hub_space("someone/cfqa_metric", requirement="cfqa==0.1.0", api=api)
    assert url == "https://huggingface.co/spaces/someone/cfqa_metric"
    assert api.calls[0] == (
        "create_repo",
        "someone/cfqa_metric",
        {"repo_type": "space", "space_sdk": "gradio", "private": False, "exist_ok": True},
    )
    assert api.calls[1] == ("upload_folder", "someone/cfqa_metric", "space")
    assert set(api.files) == {"cfqa_metric.py", "README.md", "app.py", "requirements.txt"}
    assert api.files["cfqa_metric.py"] == (Path(cfqa_metric.MODULE_PATH) / "cfqa_metric.py").read_text()
    assert "cfqa==0.1.0" in api.files["requirements.txt"].splitlines()
    assert "launch_gradio_widget" in api.files["app.py"]
    assert api.files["README.md"].startswith("---\ntitle: CFQA Metric")
    with pytest.raises(ValueError, match="owner/name"):
        cfqa_metric.push_to_hub_space("no-owner", api=api)


def test_paper_row_order():
    from cfqa_metric.cli import _paper_order

    cells = ["seg/vtm", "dpt/hm", "cls/hevc", "cls/vtm", "seg/hm", "cls/hm", "dpt/vtm"]
    assert sorted(cells, key=_paper_order) == [
        "cls/hm",
        "seg/hm",
        "dpt/hm",
        "cls/vtm",
        "seg/vtm",
        "dpt/vtm",
        "cls/hevc",
    ]
