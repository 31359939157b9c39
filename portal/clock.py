"""Time in one place, so that tests and business rules agree on it."""

import datetime as dt
from zoneinfo import ZoneInfo

MOSCOW = ZoneInfo("Europe/Moscow")


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
