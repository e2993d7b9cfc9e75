"""Runs: edit requests turned into files, one at a time or many (``flowedit edit``, ``run``, ``sweep``).

One request, one path to a file (:func:`edit_to_file`): a batch file's entries (:func:`load_jobs`,
:func:`run_jobs`) and a sweep's cells (:func:`sweep`) are edit requests written by that one function, with the
batch path's safeguards (confined outputs, no write through a link, one claim per edit, resume only the same
request, ``results.jsonl`` crash-safe).
"""

from ..models._settings import check_local_edit
from .batch import BatchSummary, derive_seed, process_shard, run_jobs
from .jobs import EditJob, load_jobs
from .records import append_record, read_records
from .request import EditRequest, edit_to_file, request_id
from .sweeps import SweepCell, contact_sheet, sweep

__all__ = [
    "BatchSummary",
    "EditJob",
    "EditRequest",
    "SweepCell",
    "append_record",
    "check_local_edit",
    "contact_sheet",
    "derive_seed",
    "edit_to_file",
    "load_jobs",
    "process_shard",
    "read_records",
    "request_id",
    "run_jobs",
    "sweep",
]
