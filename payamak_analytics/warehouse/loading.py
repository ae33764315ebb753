"""Running the source: finish what a stopped load left, then load what is new, a bounded load at a time.

dlt keeps a load package that was extracted but not loaded (a load killed by SIGKILL, a
destination that was down) and, on the next `run`, loads it and stops there. The package holds
the rows and the state that describes them together, so finishing it first and then extracting
anew is always safe; this does both in one call, and runs the source again while its last load
stopped at `rows_per_load`.
"""

from __future__ import annotations

import pyarrow as pa

from ..allocator import lean_heap

ROWS_PER_LOAD = 25_000
"""The README recipe's `rows_per_load`: dlt's merge of a load's messages numbers every staged row
at once, in DuckDB capped at 64 MB as the native sync's writer is (`store.core.WRITER_MEMORY`;
217,392 did not fit). With it a load's peak stays the same whatever the history's size, and
with the recipe's checkpoint without vacuums it follows the load's size: at 1,000,000 sent
records 285 MB at 25,000 a load, 294 MB at 50,000, at 58% and 70% of the native sync's rate
(benchmarks/RESULTS.md)."""


def finish_and_run(pipeline, source):
    """Load any pending package of `pipeline`, then run `source` until a load of it leaves
    nothing for the next; returns the last load's info."""
    from .source import more_to_load  # imports dlt: not before a script's lean_process()

    if pipeline.has_pending_data:
        pipeline.run()
    info = pipeline.run(source)
    while marked := more_to_load(pipeline, source):
        info = pipeline.run(source.with_resources(*marked))  # accounts done wait for the next call
    return info


def lean_process() -> bool:
    """For a load in a process of its own (a script, a scheduled job), what `payamak sync` does
    with `lean_heap`, plus Arrow's buffers on that same C heap: Arrow's default pool (mimalloc)
    kept the freed buffers of pages and Parquet writes (benchmarks/RESULTS.md). Not for a
    notebook: both change the whole process. False where the C library is not glibc.

    This sets the pool Python's Arrow calls take; the Parquet writer dlt writes its files with
    takes Arrow's C++ default pool, which only `ARROW_DEFAULT_MEMORY_POOL=system` in the
    environment chooses, read once when pyarrow is first imported (importing this module has
    already imported it): the README's recipe sets it on its first line."""
    pa.set_memory_pool(pa.system_memory_pool())
    return lean_heap()
