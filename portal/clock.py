"""Time in one place, so that tests and business rules agree on it."""

import datetime as dt
from zoneinfo import ZoneInfo

MOSCOW = ZoneInfo("Europe/Moscow")


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def datetime_ru(value: dt.datetime | None) -> str:
    """«25.11.2026 14:05», Moscow time (the caller says «МСК» where it is not obvious)."""
    if value is None:
        return ""
    return value.astimezone(MOSCOW).strftime("%d.%m.%Y %H:%M")


def date_ru(value: dt.date | None) -> str:
    return value.strftime("%d.%m.%Y") if value else ""
