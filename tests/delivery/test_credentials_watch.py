"""The credentials watch across threads and during an outage: an outage that ends while the
admins are being told of it is told as ended too, and the next one is told again; meanwhile
one call in each probe interval tries the platform and the other rows wait untried."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import Session

from bot.clock import ManualClock
from bot.core.service import Core
from bot.delivery.credentials import CredentialsWatch
from bot.delivery.port import Platform
from storage.delivery_models import CredentialsOutage
from tests.conftest import on_postgres
from tests.helpers import entries, run_together


def _watch(core: Core, told: list[str]) -> CredentialsWatch:
    watch = CredentialsWatch(engine=core.engine, clock=core.clock, platform=Platform.teams,
                             alert_on=(Platform.slack, Platform.teams),
                             grace=timedelta(0), probe_every=timedelta(seconds=30))
    real = watch._tell

    def tell(action: str, *args: Any, **kwargs: Any) -> Any:
        done = real(action, *args, **kwargs)
        if done is not None:  # told (not declined: nothing to tell, or told elsewhere)
            told.append(action)
        return done

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


def _told(core: Core) -> tuple[int, int]:
    """How many outages the record says were told of, begun and ended."""
    return (len(entries(core, action="delivery.credentials_refused")),
            len(entries(core, action="delivery.credentials_accepted")))


def test_processes_delivering_to_one_platform_tell_of_an_outage_once(core: Core) -> None:
    """Several processes watch the same credentials (`noticebot teams` workers, a worker): one
    tells of the outage, and one of its end, whichever sees it first."""
    first, second = _watch(core, []), _watch(core, [])
    first.accepted()  # each process starts up delivering: no outage to end
    second.accepted()
    first.refused("401")
    second.refused("401")
    assert _told(core) == (1, 0)
    second.accepted()  # the second saw it end first: it says so, for both
    first.accepted()
    assert _told(core) == (1, 1)
    second.refused("401")  # the next outage is told again, by whichever sees it
    first.refused("401")
    assert _told(core) == (2, 1)
    # The processes that saw it are gone (a redeploy); a new one gets through: it was mended.
    restarted = _watch(core, [])
    restarted.accepted()
    assert _told(core) == (2, 2)
    restarted.accepted()
    assert _told(core) == (2, 2)
    with Session(core.engine) as session:
        outage = session.get(CredentialsOutage, Platform.teams)
        assert outage is not None and outage.ended_at is not None


@pytest.mark.skipif(not on_postgres(), reason="replicas need PostgreSQL")
def test_processes_seeing_an_outage_at_once_tell_of_it_once(core: Core) -> None:
    watches = [_watch(core, []) for _ in range(4)]
    run_together(*[lambda watch=watch: watch.refused("401") for watch in watches])
    assert _told(core) == (1, 0)
    run_together(*[watch.accepted for watch in watches])
    assert _told(core) == (1, 1)


def test_an_end_that_could_not_be_saved_is_saved_with_the_next_call_through(
        core: Core) -> None:
    """Otherwise the outage would stay open, and the next one would be told to no one."""
    watch = _watch(core, [])
    watch.refused("401")
    real = watch._tell

    def database_down(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database down")

    watch._tell = database_down  # type: ignore[method-assign]
    watch.accepted()
    assert _told(core) == (1, 0)
    watch._tell = real  # type: ignore[method-assign]
    watch.accepted()  # the database is back
    assert _told(core) == (1, 1)
    watch.refused("401")
    assert _told(core) == (2, 1)


@pytest.mark.parametrize("stale_told_it", [False, True])
def test_a_process_still_refused_after_another_ended_the_outage_tells_again(
        core: Core, stale_told_it: bool) -> None:
    """The credentials are one process's: a worker left on an old secret while the others
    were given the new one is still refused, and says so, whichever process told first."""
    clock = core.clock
    assert isinstance(clock, ManualClock)
    mended, stale = _watch(core, []), _watch(core, [])
    for watch in (mended, stale):
        watch.grace = timedelta(minutes=5)
        watch.accepted()
        watch.refused("401")
    clock.advance(timedelta(minutes=5))
    for watch in ((stale, mended) if stale_told_it else (mended, stale)):
        watch.refused("401")
    assert _told(core) == (1, 0)
    mended.accepted()  # given the new secret
    assert _told(core) == (1, 1)
    stale.refused("401")  # not yet looked again
    assert _told(core) == (1, 1)
    clock.advance(timedelta(minutes=5))
    stale.refused("401")
    assert _told(core) == (2, 1)
    clock.advance(timedelta(minutes=5))
    stale.refused("401")  # looked again, and it is still the same outage: told once
    assert _told(core) == (2, 1)


def test_an_outage_that_ended_while_told_and_could_not_be_saved_ends_later(
        core: Core) -> None:
    watch = _watch(core, [])
    real = watch._tell
    calls = 0

    def ended_meanwhile_then_down(action: str, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if action == "delivery.credentials_refused":
            watch.accepted()  # another thread got through while the start was being told
            return real(action, *args, **kwargs)
        if calls > 2:  # the end after the start was told: the database is down
            raise RuntimeError("database down")
        return real(action, *args, **kwargs)

    watch._tell = ended_meanwhile_then_down  # type: ignore[method-assign]
    watch.refused("401")
    assert _told(core) == (1, 0)
    watch._tell = real  # type: ignore[method-assign]
    watch.accepted()  # the next call through
    assert _told(core) == (1, 1)
