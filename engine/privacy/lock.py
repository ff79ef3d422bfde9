"""The data directory's worker lock: one process applies events and erasures at a time.

`bond worker` holds it while it runs. `bond erase` takes it to carry out an erasure itself when
no worker is running, and otherwise leaves the request to the worker that holds it; `bond alerts
send` likewise. It is the worker's lock of bond/storage/dirlock.py, so a worker refused while
one of these holds it names that process.
"""

from __future__ import annotations

from pathlib import Path

from bond.storage.dirlock import WORKER, DataDirLock


class WorkerLock(DataDirLock):
    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir, WORKER)
