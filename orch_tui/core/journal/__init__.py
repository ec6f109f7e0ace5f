"""The run journal: what every job did, across runs, in one SQLite file next to the outputs.

- schema.py: the tables, the migrations from older journals, the row a job leaves;
- errors.py: the journal's errors, one line each;
- store.py: the file (private, checked, moved aside when damaged) and its writer thread;
- recorder.py: `Journal`, the bus listener and what a resumed run reads back.
"""

from orch_tui.core.journal.errors import BUSY_SECONDS, JournalDamaged, JournalError
from orch_tui.core.journal.recorder import SYNC_SECONDS, DiedRun, Journal, config_json
from orch_tui.core.journal.schema import (INTERRUPTED_STATES, JOURNAL_NAME, SCHEMA_VERSION,
                                          JobRecord)
from orch_tui.core.journal.store import BATCH_SECONDS, BATCH_SIZE, RETRY_SECONDS, SIDE_SUFFIXES

__all__ = [
    "BATCH_SECONDS", "BATCH_SIZE", "BUSY_SECONDS", "INTERRUPTED_STATES", "JOURNAL_NAME",
    "RETRY_SECONDS", "SCHEMA_VERSION", "SIDE_SUFFIXES", "SYNC_SECONDS", "DiedRun", "JobRecord",
    "Journal", "JournalDamaged", "JournalError", "config_json"
]
