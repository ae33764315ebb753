"""Running the source: finish what a stopped load left, then load what is new.

dlt keeps a load package that was extracted but not loaded (a load killed by SIGKILL, a
destination that was down) and, on the next `run`, loads it and stops there. The package holds
the rows and the state that describes them together, so finishing it first and then extracting
anew is always safe; this does both in one call.
"""

from __future__ import annotations


def finish_and_run(pipeline, source):
    """Load any pending package of `pipeline`, then run `source`; returns the last load's info."""
    if pipeline.has_pending_data:
        pipeline.run()
    return pipeline.run(source)
