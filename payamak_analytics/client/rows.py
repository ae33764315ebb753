"""A page's typed rows without pandas: one numpy array per column.

The sync reads pages into these and DuckDB scans them as they are, so `payamak sync` never
imports pandas, nor Arrow, which pandas loads with it: 100 MB of the syncing process's memory
(benchmarks/RESULTS.md). A column that may lack a value is a masked array; times are UTC
(`datetime64[us]`); enum names and texts are object arrays, None where a value is missing.
A DataFrame is made of them only when asked for (`message_frame`).
"""

from __future__ import annotations

import re
from datetime import UTC, timedelta, tzinfo
from typing import TYPE_CHECKING

import numpy as np

from ..dates import TEHRAN
from .columns import BOOLEANS, INT32, MESSAGE_COLUMNS, MESSAGE_KINDS, wire_value

if TYPE_CHECKING:
    import pandas as pd

_WIRE_NAME = {column: wire for wire, column in MESSAGE_COLUMNS.items()}


class Rows:
    """Columns of equal length, by name."""

    def __init__(self, columns: dict[str, np.ndarray]):
        self.columns = columns

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()), ()))

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def take(self, which) -> Rows:
        """The rows a slice, a boolean mask or an array of positions selects."""
        return Rows({name: column[which] for name, column in self.columns.items()})

    @staticmethod
    def concat(parts: list[Rows]) -> Rows:
        """Pages one after another (a column keeps its gaps if any page has them)."""
        if len(parts) == 1:
            return parts[0]
        return Rows({name: _joined([part[name] for part in parts]) for name in parts[0].columns})


def _joined(arrays: list[np.ndarray]) -> np.ndarray:
    masked = any(np.ma.isMaskedArray(array) for array in arrays)
    return np.ma.concatenate(arrays) if masked else np.concatenate(arrays)


def message_rows(texts: dict[str, list[str | None]], zone: tzinfo = TEHRAN, operation: str = "GetMessages") -> Rows:
    """Typed columns of a GetMessages page's texts (see `columns.MESSAGE_KINDS`); a text that is
    not what its field holds raises AnswerError naming it. A time without an offset is in
    `zone`, the service's."""
    return Rows({column: _typed(column, values, zone, operation) for column, values in texts.items()})


def _typed(column: str, values: list[str | None], zone: tzinfo, operation: str) -> np.ndarray:
    kind = MESSAGE_KINDS[column]
    if kind.startswith("enum:"):  # few distinct values: each is read once (a blank one is None)
        names = {v: wire_value(kind, v, operation=operation, field=_WIRE_NAME[column]) for v in set(values)}
        return np.array([names[v] for v in values], dtype=object)
    if kind == "string":
        return np.array(values, dtype=object)
    try:
        return _fast(kind, values, zone)
    except (ValueError, TypeError, KeyError, OverflowError, AttributeError):
        pass
    # value by value: raises AnswerError at the first value out of contract
    checked = [wire_value(kind, v, operation=operation, field=_WIRE_NAME[column], zone=zone) for v in values]
    if kind == "datetime":
        return np.array([None if v is None else v.astimezone(UTC).replace(tzinfo=None) for v in checked], "M8[us]")
    return _with_gaps([None if v is None else float(v) if kind == "decimal" else v for v in checked], _DTYPE[kind])


_DTYPE = {"int": np.int64, "decimal": np.float64, "bool": np.bool_}


def _with_gaps(values: list, dtype) -> np.ndarray:
    gaps = [v is None for v in values]
    data = np.array([0 if v is None else v for v in values], dtype=dtype)
    return np.ma.MaskedArray(data, mask=gaps) if any(gaps) else data


def _fast(kind: str, values: list[str | None], zone: tzinfo) -> np.ndarray:
    """The whole column at once; any doubt raises, and the column is read value by value."""
    if kind == "datetime":
        return _timestamps(values, zone)
    if kind == "bool":
        flags = {v: None if v is None else BOOLEANS[v.strip().lower()] for v in set(values)}
        return _with_gaps([flags[v] for v in values], np.bool_)
    gaps = np.array([v is None for v in values]) if None in values else None
    filled = np.array(values if gaps is None else [v or "0" for v in values], dtype=object)
    if kind == "int":
        numbers = filled.astype(np.int64)
        if len(numbers) and (numbers.min() < INT32[0] or numbers.max() > INT32[1]):
            raise OverflowError("outside int32")
    else:
        numbers = filled.astype(np.float64)
        if not np.isfinite(numbers).all():
            raise ValueError("not finite")
    return numbers if gaps is None else np.ma.MaskedArray(numbers, mask=gaps)


# A local time numpy and `datetime.fromisoformat` read alike: a whole date, then what of a time
_PLAIN_LOCAL = re.compile(r"\d{4}-\d\d-\d\d(?:[Tt ]\d\d(?::\d\d(?::\d\d(?:\.\d+)?)?)?)?", re.ASCII)


def _timestamps(values: list[str | None], zone: tzinfo) -> np.ndarray:
    """Texts without an offset, local times of `zone`, as UTC: parsed by numpy in C, and read
    as `wire_value` reads each one (`datetime.replace(tzinfo=zone)`). The offset is looked up
    at both ends of each distinct hour, and time by time in an hour it changes in (zones once
    changed on odd seconds: Tehran in 1935); no zone changed twice within two days. Only a
    text `_PLAIN_LOCAL` matches is read here: one with an offset or Z is read value by value for
    what it says, and numpy reads what `wire_value` refuses ('now', 'today', a month or a year
    alone, a time ending in a dot)."""
    if any(v is not None and not _PLAIN_LOCAL.fullmatch(v) for v in values):
        raise ValueError("offsets, words or a time cut short")
    local = np.array(values, dtype="datetime64[us]")
    if np.isnat(local).sum() != values.count(None):
        raise ValueError("NaT")
    known = local[~np.isnat(local)]
    if len(known):  # `wire_value` refuses a time Tehran's calendar cannot hold (past 9999): raises here
        for extreme in (known.min(), known.max()):
            extreme.item().replace(tzinfo=zone).astimezone(TEHRAN)
    hours, where = np.unique(local.astype("datetime64[h]"), return_inverse=True)
    offsets = np.array([_offset(hour, zone) for hour in hours], dtype="timedelta64[us]")
    last_seconds = hours.astype("datetime64[s]") + np.timedelta64(3599, "s")
    changing = offsets != np.array([_offset(second, zone) for second in last_seconds], dtype="timedelta64[us]")
    utc = local - offsets[where]
    for i in np.flatnonzero(changing[where]):
        utc[i] = local[i] - np.timedelta64(_offset(local[i], zone), "us")
    return utc


def _offset(local: np.datetime64, zone: tzinfo) -> int:
    """The zone's offset from UTC at a local time, in microseconds (0 for NaT)."""
    if np.isnat(local):
        return 0
    return local.item().replace(tzinfo=zone).utcoffset() // timedelta(microseconds=1)


def message_frame(rows: Rows) -> pd.DataFrame:
    """The DataFrame of a messages page, with the canonical dtypes (`columns.MESSAGE_DTYPES`)."""
    import pandas as pd

    def column(name: str, values: np.ndarray):
        kind, data, mask = MESSAGE_KINDS[name], np.ma.getdata(values), np.ma.getmaskarray(values)
        if kind == "datetime":
            return pd.DatetimeIndex(values).tz_localize("UTC").tz_convert(TEHRAN)
        if kind.startswith("enum:"):
            return pd.Categorical(values, categories=sorted({v for v in values if v is not None}))
        if kind == "string":
            return pd.array(values, dtype="string[python]")
        arrays = {"int": pd.arrays.IntegerArray, "decimal": pd.arrays.FloatingArray, "bool": pd.arrays.BooleanArray}
        return arrays[kind](data, mask)

    return pd.DataFrame({name: column(name, values) for name, values in rows.columns.items()}, copy=False)
