"""Client speed: the columnar page parser against zeep's object parsing, client start-up, and a
report page's envelope filled into a template against zeep building it.

    .venv/bin/python benchmarks/bench_client.py

Both parsers read the same bytes of a 1000-row GetMessages page in the same process, in
alternating blocks of calls (as timeit.repeat does), so machine noise hits both alike; the ratio
of the medians is what counts. The garbage collector runs before each block, so that neither
side pays for the other's garbage.
"""

from __future__ import annotations

import scratch  # noqa: F401  (first: every temporary file of this run goes into its folder)

# isort: split
import gc
import os
import statistics
import tempfile
import time

os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp()  # a cold WSDL cache for this run

import pandas as pd
from lxml import etree
from zeep.helpers import serialize_object

from payamak_analytics import PanelClient
from payamak_analytics.client.pages import message_columns, messages_frame
from payamak_analytics.simulator import HistoryConfig, Simulator, WorldConfig

ROUNDS = 8


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def block(function, calls: int) -> list[float]:
    """The time of each of `calls` consecutive calls."""
    gc.collect()
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    with Simulator(WorldConfig(history=HistoryConfig(messages=5000))) as simulator:
        started = time.perf_counter()
        client = PanelClient("demo", "demo", wsdl=simulator.wsdl_url)
        cold = time.perf_counter() - started
        warm, uncached = [], []
        for _ in range(10):
            started = time.perf_counter()
            PanelClient("demo", "demo", wsdl=simulator.wsdl_url)
            warm.append(time.perf_counter() - started)
            started = time.perf_counter()
            PanelClient("demo", "demo", wsdl=simulator.wsdl_url, cache_wsdl=False)
            uncached.append(time.perf_counter() - started)
        print(
            f"client construction: cold {cold * 1000:.0f} ms; warm WSDL cache median {median_ms(warm):.0f} ms "
            f"(target <= 200 ms); without the cache {median_ms(uncached):.0f} ms"
        )

        raw = client.messages_page("sent", count=1000).raw
        operation = client.wire.binding.get("GetMessages")

        def ours() -> pd.DataFrame:
            return messages_frame(message_columns(raw))

        def zeeps() -> pd.DataFrame:
            return pd.DataFrame([serialize_object(info) for info in operation.process_reply(etree.fromstring(raw))])

        assert len(ours()) == len(zeeps()) == 1000
        fast, slow = [], []
        for _ in range(ROUNDS):
            fast += block(ours, 10)
            slow += block(zeeps, 3)
        ratio = statistics.median(slow) / statistics.median(fast)
        print(
            "1000-row page into a DataFrame: ours (lxml checks, a regular expression reads) "
            f"{median_ms(fast):.1f} ms, zeep objects + "
            f"serialize_object + DataFrame {median_ms(slow):.1f} ms: {ratio:.1f}x faster (target >= 8x)"
        )
        bare = block(lambda: etree.fromstring(raw), 30)
        print(f"parse floor (bare lxml parse of the same bytes): {median_ms(bare):.1f} ms")

        params = {"batchSmsId": 10000049, "index": 1, "count": 100}
        filled, built = [], []
        for _ in range(ROUNDS):
            filled += block(lambda: client.wire._envelope("GetBatchDelivery", params), 200)
            built += block(lambda: client.wire._from_zeep("GetBatchDelivery", params), 200)
        print(
            f"a report page's envelope: filled into zeep's template {median_ms(filled):.3f} ms, "
            f"built by zeep {median_ms(built):.3f} ms: {statistics.median(built) / statistics.median(filled):.0f}x"
        )


if __name__ == "__main__":
    main()
