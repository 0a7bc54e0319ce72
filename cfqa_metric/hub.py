"""Where the `evaluate` module lives, the paper's published table, and publishing it as a Hub Space."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

import pandas as pd

__all__ = ["MODULE_PATH", "published_table", "push_to_hub_space"]

#: Folder holding ``cfqa_metric.py``: ``evaluate.load(MODULE_PATH)`` works from any working directory.
MODULE_PATH = os.path.dirname(os.path.abspath(__file__))

_PUBLISHED = os.path.join(MODULE_PATH, "data", "published.csv")

_APP = """import evaluate
from evaluate.utils import launch_gradio_widget

module = evaluate.load("cfqa_metric.py")
launch_gradio_widget(module)
"""


def published_table() -> pd.DataFrame:
    """The paper's table (spec "Published results"): one row per (codec, task, metric) with signed
    ``plcc`` and ``srocc`` under the per-reference protocol. Codecs use the project's names
    (``hm``, ``vtm``, ``hyperprior_multi_task``, ``hyperprior_task_specific``). The paper's ``cka`` column
    was produced by the reference code's aggregation, i.e. :func:`cfqa_metric.cka_upstream`."""
    return pd.read_csv(_PUBLISHED)


def push_to_hub_space(
    repo_id: str,
    *,
    requirement: str = "cfqa",
    private: bool = False,
    token: str | None = None,
    api: Any = None,
    commit_message: str = "Upload the cfqa_metric evaluate module",
) -> str:
    """Publish the ``evaluate`` module and its card as a Gradio Space ``repo_id``.

    The Space holds ``cfqa_metric.py``, ``README.md`` (the metric card, whose YAML header configures the
    Space), an ``app.py`` launching evaluate's widget, and ``requirements.txt`` with ``requirement`` (the
    pip requirement that installs this package, e.g. a ``git+https://`` URL). ``token=None`` uses the
    login of ``huggingface-cli``. After the push, ``evaluate.load(repo_id)`` loads it.

    Returns
    -------
    The URL of the Space.
    """
    if not repo_id or repo_id.count("/") != 1:
        raise ValueError(f"repo_id must look like 'owner/name', got {repo_id!r}")
    if api is None:
        from huggingface_hub import HfApi  # only needed when publishing

        api = HfApi(token=token)
    url = api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("cfqa_metric.py", "README.md"):
            shutil.copyfile(os.path.join(MODULE_PATH, name), os.path.join(tmp, name))
        with open(os.path.join(tmp, "app.py"), "w", encoding="utf-8") as fh:
            fh.write(_APP)
        with open(os.path.join(tmp, "requirements.txt"), "w", encoding="utf-8") as fh:
            fh.write(f"evaluate>=0.4.6\n{requirement}\n")
        api.upload_folder(repo_id=repo_id, repo_type="space", folder_path=tmp, commit_message=commit_message)
    return str(url)
