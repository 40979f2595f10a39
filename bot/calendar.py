"""Business days and working hours in a recipient's time zone. Federal holidays follow OPM's
list as the `holidays` package publishes it (government category), plus admin overrides."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

WORK_START = time(9, 0)
WORK_END = time(17, 0)


class BusinessCalendar:
    def __init__(self, extra_holidays: frozenset[date] = frozenset()) -> None:
        self._federal = holidays.country_holidays("US", categories=("government",))
        self._extra = extra_holidays

    def is_business_day(self, day: date) -> bool:
        return day.weekday() < 5 and day not in self._federal and day not in self._extra

    def add_business_days(self, day: date, count: int) -> date:
        while count > 0:
            day += timedelta(days=1)
            if self.is_business_day(day):
                count -= 1
        return day

    def next_business_day(self, day: date) -> date:
        """`day` itself if it is one, else the next."""
        while not self.is_business_day(day):
            day += timedelta(days=1)
        return day

    def at_start_of_work(self, day: date, zone: str) -> datetime:
        return datetime.combine(day, WORK_START, tzinfo=ZoneInfo(zone)).astimezone(UTC)

    def after_business_days(self, moment: datetime, count: int, zone: str) -> datetime:
        """09:00 local on the `count`-th business day after the local day of `moment`."""
        local_day = moment.astimezone(ZoneInfo(zone)).date()
        return self.at_start_of_work(self.add_business_days(local_day, count), zone)

    def in_working_hours(self, moment: datetime, zone: str) -> bool:
        local = moment.astimezone(ZoneInfo(zone))
        return self.is_business_day(local.date()) and WORK_START <= local.time() < WORK_END

    def next_working_moment(self, moment: datetime, zone: str) -> datetime:
        """`moment` if it is within working hours, else the next 09:00 local on a business
        day."""
        if self.in_working_hours(moment, zone):
            return moment
        local = moment.astimezone(ZoneInfo(zone))
        day = local.date() if local.time() < WORK_START else local.date() + timedelta(days=1)
        return self.at_start_of_work(self.next_business_day(day), zone)
