"""cfqa_dataset: the CFQA benchmark as a Hugging Face dataset.

Schema (`schema`), streaming Parquet writer (`write_dataset`), generated card, pair iterator (`iter_pairs`),
importer of the official release (`import_release`), sha256 manifest (`verify`) and Hub upload (`push`).
"""

from .manifest import VerifyReport, verify
from .schema import COLUMNS, REFERENCE_SHAPES, TASKS, features_for
from .writer import write_dataset

__all__ = [
    "COLUMNS",
    "REFERENCE_SHAPES",
    "TASKS",
    "VerifyReport",
    "features_for",
    "verify",
    "write_dataset",
]
