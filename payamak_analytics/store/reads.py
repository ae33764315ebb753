"""Reads of the store as DataFrames typed as the client types the same data."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..client.pages import MESSAGE_COLUMNS, messages_frame
from ..dates import window
from ..errors import InputError

if TYPE_CHECKING:
    import pandas as pd

# A stored direction as the service writes it (MessageType); accepted spellings as the client's.
_DIRECTIONS = {"sent": "Out", "out": "Out", "2": "Out", "received": "In", "in": "In", "inbox": "In", "1": "In"}


def direction_of(value) -> str:
    """ "Out" or "In" for every spelling the client accepts (sent/out/2, received/in/inbox/1)."""
    key = str(value).strip().lower() if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    if key not in _DIRECTIONS:
        raise InputError(
            f"direction must be 'sent' (2) or 'received' (1), not {value!r}.",
            "نوع پیام باید دریافتی (۱) یا ارسالی (۲) باشد",
        )
    return _DIRECTIONS[key]


def typed_messages(frame: pd.DataFrame) -> pd.DataFrame:
    """Stored messages with the dtypes of the client's frames (Int64, string, boolean,
    category, Tehran timestamps), so that the two can be compared and concatenated."""
    import pandas as pd

    canonical = messages_frame({c: [] for c in MESSAGE_COLUMNS.values()}).dtypes
    for column, dtype in canonical.items():
        if column in frame:
            frame[column] = frame[column].astype("category" if isinstance(dtype, pd.CategoricalDtype) else dtype)
    return frame


class Reads:
    """The store's tables as DataFrames, newest first where time matters."""

    def messages(
        self,
        direction=None,
        *,
        since=None,
        until=None,
        lines: tuple[str, ...] = (),
    ) -> pd.DataFrame:
        """Stored messages, newest first; `direction` is "sent" or "received" (or the client's
        other spellings); `since`/`until` take every form `payamak_analytics.dates.moment` reads."""
        start, end = window(since, until)
        where, params = [], []
        if direction is not None:
            where.append("message_type = ?")
            params.append(direction_of(direction))
        for clause, value in (("action_datetime >= ?", start), ("action_datetime < ?", end)):
            if value is not None:
                where.append(clause)
                params.append(value)
        if lines:
            where.append("(CASE WHEN message_type = 'In' THEN receiver ELSE sender END) IN (SELECT unnest(?))")
            params.append([str(line) for line in lines])
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        frame = self.sql(f"SELECT * FROM messages {clause} ORDER BY message_id DESC", params)
        return typed_messages(frame)

    def batches(self) -> pd.DataFrame:
        return self.sql("SELECT * FROM batches ORDER BY batch_id DESC")

    def deliveries(self, batch_id: int | None = None) -> pd.DataFrame:
        """Every recipient of every stored batch, with its current status and the batch's line and time."""
        clause, params = ("WHERE d.batch_id = ?", [batch_id]) if batch_id is not None else ("", [])
        return self.sql(
            f"""
            SELECT d.*, b.line, b.sent_at, b.campaign
            FROM deliveries d JOIN batches b USING (batch_id) {clause}
            ORDER BY d.batch_id, d."row" """,
            params,
        )

    def sync_runs(self) -> pd.DataFrame:
        return self.sql("SELECT * FROM sync_runs ORDER BY run_id")

    def lines(self) -> list[str]:
        """The sender lines of the stored batches, in order."""
        return self.sql("SELECT DISTINCT line FROM batches WHERE line IS NOT NULL ORDER BY 1")["line"].tolist()

    def delivery_status_counts(self) -> pd.DataFrame:
        """Recipients by their last known status code."""
        return self.sql("SELECT status, count(*) AS recipients FROM deliveries GROUP BY 1 ORDER BY 1")

    def account(self) -> dict[str, str]:
        """The account and service address this store was first synced from ({} before that)."""
        return dict(self.sql("SELECT key, value FROM store_meta").values.tolist())
