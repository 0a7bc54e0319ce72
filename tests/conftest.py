"""Shared pytest fixtures; each package adds its own clearly named block."""

# ---- cfqa_dataset fixtures (owned by the dataset package's tests) ----------------------------------------
import pytest as _cfqa_ds_pytest


@_cfqa_ds_pytest.fixture
def cfqa_hf_offline(tmp_path_factory, monkeypatch):
    """A private, offline Hugging Face cache: nothing is downloaded and nothing leaks into ~/.cache."""
    import datasets
    import huggingface_hub.constants

    home = tmp_path_factory.mktemp("hf_home")
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    # datasets and huggingface_hub read these at import time: patch the module values too.
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", home / "datasets")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return home
