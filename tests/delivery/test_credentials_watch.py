"""The credentials watch across threads and during an outage: an outage that ends while the
admins are being told of it is told as ended too, and the next one is told again; meanwhile
one call in each probe interval tries the platform and the other rows wait untried."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.clock import ManualClock
from bot.core.service import Core
from bot.delivery.credentials import CredentialsWatch
from bot.delivery.port import Platform


def _watch(core: Core, told: list[str]) -> CredentialsWatch:
    watch = CredentialsWatch(engine=core.engine, clock=core.clock, platform=Platform.teams,
                             alert_on=(Platform.slack, Platform.teams),
                             grace=timedelta(0), probe_every=timedelta(seconds=30))
    real = watch._tell

    def tell(action: str, *args: Any, **kwargs: Any) -> Any:
        told.append(action)
        return real(action, *args, **kwargs)

    watch._tell = tell  # type: ignore[method-assign]
    return watch


def test_an_outage_that_ends_while_being_told_is_told_as_ended_and_the_next_one_again(
        core: Core) -> None:
    told: list[str] = []
    watch = _watch(core, told)
    real = watch._tell

    def tell_while_another_thread_gets_through(action: str, *args: Any, **kwargs: Any) -> Any:
        if action == "delivery.credentials_refused":
            watch.accepted()  # another delivery thread's call went through meanwhile
        return real(action, *args, **kwargs)

    watch._tell = tell_while_another_thread_gets_through  # type: ignore[method-assign]
    watch.refused("401")
    assert told == ["delivery.credentials_refused", "delivery.credentials_accepted"]
    watch._tell = real  # type: ignore[method-assign]
    watch.refused("401")  # a new outage: told again, not silenced by the one before
    assert told[2:] == ["delivery.credentials_refused"]
    watch.accepted()
    assert told[3:] == ["delivery.credentials_accepted"]


def test_during_an_outage_one_call_in_each_probe_interval_tries_the_platform(
        core: Core) -> None:
    clock = core.clock
    assert isinstance(clock, ManualClock)
    watch = _watch(core, [])
    assert watch.postpone() is None  # no outage: every call goes
    watch.refused("invalid_auth")
    assert watch.postpone() is None  # the probe
    assert watch.postpone() == timedelta(seconds=30)  # the others wait
    clock.advance(timedelta(seconds=30))
    assert watch.postpone() is None
    assert watch.postpone() == timedelta(seconds=30)
    watch.accepted()
    assert watch.postpone() is None and watch.postpone() is None
