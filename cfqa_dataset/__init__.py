"""cfqa_dataset: the CFQA benchmark as a Hugging Face dataset.

Schema (`schema`), streaming Parquet writer (`write_dataset`), generated card (`card`), pair iterator
(`iter_pairs`), importer of the official release (`import_release`), sha256 manifest (`verify`) and Hub
upload (`push`).
"""

from .card import render_card, write_card
from .hub import PushPlan, plan_push, push
from .manifest import VerifyReport, verify
from .pairs import Pair, iter_pairs
from .release import ImportReport, ReleaseError, import_release
from .schema import COLUMNS, REFERENCE_SHAPES, TASKS, features_for
from .writer import write_dataset

__all__ = [
    "COLUMNS",
    "REFERENCE_SHAPES",
    "TASKS",
    "ImportReport",
    "Pair",
    "PushPlan",
    "ReleaseError",
    "VerifyReport",
    "features_for",
    "import_release",
    "iter_pairs",
    "plan_push",
    "push",
    "render_card",
    "verify",
    "write_card",
    "write_dataset",
]
