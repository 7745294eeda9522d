"""Process-pool map and the progress bar of a search."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any


@dataclass
class Run:
    """Book-keeping of one search: refinement seed, processes, progress bar, notes and counters."""

    seed: int
    n_jobs: int
    bar: Any  # a tqdm bar (or a stand-in with n, total, update, refresh, close)
    notes: list
    stats: dict


def map_tasks(function, tasks: list, n_jobs: int, progress):
    """``[function(t) for t in tasks]``, over processes when n_jobs > 1, updating a tqdm bar if given."""
    if n_jobs <= 1 or len(tasks) <= 1:
        results = []
        for task in tasks:
            results.append(function(task))
            if progress is not None:
                progress.update(1)
        return results
    with ProcessPoolExecutor(max_workers=min(n_jobs, len(tasks))) as pool:
        results = []
        for result in pool.map(function, tasks):
            results.append(result)
            if progress is not None:
                progress.update(1)
        return results


class Background:
    """``function(*args)`` in one separate process, started now (``result`` waits; ``cancel`` stops it): lets a
    sequential part of a search use a second core while another part runs."""

    def __init__(self, function, *args):
        self._pool = multiprocessing.get_context().Pool(1)
        self._pending = self._pool.apply_async(function, args)

    def result(self):
        try:
            return self._pending.get()
        finally:
            self._pool.close()
            self._pool.join()

    def cancel(self) -> None:
        self._pool.terminate()
        self._pool.join()


def skip_work(bar, count: int) -> None:
    """Drop ``count`` planned calibrations from the bar's total (the shown fraction only moves forward)."""
    if count > 0:
        bar.total -= count
        bar.refresh()


def progress_bar(progress: bool, total: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="optimize_noise", unit="calibration", disable=not progress, leave=False)
