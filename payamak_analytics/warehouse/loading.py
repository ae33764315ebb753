"""Running the source: finish what a stopped load left, then load what is new.

dlt keeps a load package that was extracted but not loaded (a load killed by SIGKILL, a
destination that was down) and, on the next `run`, loads it and stops there. The package holds
the rows and the state that describes them together, so finishing it first and then extracting
anew is always safe; this does both in one call.
"""

from __future__ import annotations

import pyarrow as pa

from ..allocator import lean_heap


def finish_and_run(pipeline, source):
    """Load any pending package of `pipeline`, then run `source`; returns the last load's info."""
    if pipeline.has_pending_data:
        pipeline.run()
    return pipeline.run(source)


def lean_process() -> bool:
    """For a load in a process of its own (a script, a scheduled job), what `payamak sync` does
    with `lean_heap`, plus Arrow's buffers on that same C heap: Arrow's default pool (mimalloc)
    kept the freed buffers of pages and Parquet writes. At 200,000 sent records a load peaked at
    about 300-310 MB with both, 316-318 MB with lean_heap alone, 340 MB with Arrow's pool alone
    (benchmarks/RESULTS.md). Not for a notebook: both change the whole process. False where the
    C library is not glibc."""
    pa.set_memory_pool(pa.system_memory_pool())
    return lean_heap()
