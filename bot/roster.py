"""Roster import (README): people, roles, AORs, approver chains, managers, contacts, training.

The whole file is checked before anything is written; every problem is reported with the line
and key it sits at. Importing the same file twice changes nothing; each change is recorded.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from sqlmodel import SQLModel, col, delete, select

from bot import roster_identities as identities
from bot.core import access, reminders
from bot.core.context import Ctx
from bot.messages import DestinationKind, Message, mention
from config.platforms import CHANNEL_ID_SHAPES, PERSON_ID_SHAPES, Platform
from config.teams import host_of
from storage.models import (
    Aor,
    AorApprover,
    AorChannel,
    AorManager,
    Case,
    Contact,
    Delegation,
    Person,
    PersonRole,
    Role,
    Stage,
    TrainingCompletion,
)

# noticebot's own id for a person: a Slack user id in rosters from before identities existed.
PERSON_ID = r"^[A-Za-z0-9._-]{2,32}$"
SLACK_CHANNEL = CHANNEL_ID_SHAPES[Platform.slack]
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class RosterError(Exception):
    """The roster file cannot be imported; `problems` lists each one with its place."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("roster not imported:\n  " + "\n  ".join(problems))
        self.problems = problems


class TeamsChannelEntry(BaseModel):
    """`[aor.teams]`: the AOR's channel in Teams (the team, the channel's conversation id, and
    the Bot Connector service URL the team is reached through)."""

    model_config = ConfigDict(extra="forbid")
    team: str = Field(min_length=1, max_length=256)
    channel: str = Field(pattern=CHANNEL_ID_SHAPES[Platform.teams], max_length=256)
    service_url: str = Field(pattern=r"^https://[^\s]+$", max_length=512)


class AorEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    name: str = Field(min_length=1)
    supervisors: list[str] = Field(default_factory=list)
    managers: list[str] = Field(default_factory=list)
    channel: str | None = Field(default=None, pattern=SLACK_CHANNEL)  # the Slack channel
    teams: TeamsChannelEntry | None = None

    @field_validator("supervisors", "managers")
    @classmethod
    def _user_ids(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not re.match(PERSON_ID, v)]
        if bad:
            raise ValueError(f"not chat user ids: {', '.join(bad)}")
        if len(set(value)) != len(value):
            raise ValueError("lists a user twice")
        return value


class PersonEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # The platform identities come first: `user`'s check depends on them.
    slack: str | None = Field(default=None, pattern=PERSON_ID_SHAPES[Platform.slack])
    teams: str | None = Field(default=None, pattern=PERSON_ID_SHAPES[Platform.teams])
    user: str = Field(pattern=PERSON_ID)
    name: str = Field(min_length=1)
    email: str
    roles: list[Role] = Field(min_length=1)
    aor: str | None = None
    training_completed: date | None = None
    timezone: str = "America/New_York"

    @field_validator("teams")
    @classmethod
    def _teams(cls, value: str | None) -> str | None:
        # An Entra object id is a GUID, the same in any case; Teams sends it in lower case.
        return None if value is None else value.lower()

    @field_validator("user")
    @classmethod
    def _user(cls, value: str, info: ValidationInfo) -> str:
        # Without another identity, `user` is the person's Slack user id (as it always was).
        if info.data.get("slack") is None and info.data.get("teams") is None \
                and not re.match(PERSON_ID_SHAPES[Platform.slack], value):
            raise ValueError("not a Slack user id (with `slack` or `teams` given, `user` may "
                             "be any id of letters, digits, '.', '_' or '-')")
        return value

    def identities(self) -> dict[Platform, str]:
        """The person's id on each platform; `user` alone is their Slack id."""
        if self.slack is None and self.teams is None:
            return {Platform.slack: self.user}
        found = {Platform.slack: self.slack, Platform.teams: self.teams}
        return {platform: value for platform, value in found.items() if value is not None}

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not EMAIL.match(value):
            raise ValueError("not an e-mail address")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{value}' (use an IANA name such as "
                             "America/Chicago)") from None
        return value


class ContactEntry(BaseModel):
    """An office notified, by case id only, when a notice must not be used (§5.2)."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    name: str = Field(min_length=1)
    channel: str = Field(pattern=SLACK_CHANNEL)


class RosterFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    aor: list[AorEntry] = Field(default_factory=list)
    person: list[PersonEntry] = Field(default_factory=list)
    contact: list[ContactEntry] = Field(default_factory=list)


@dataclass
class ImportReport:
    changes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.changes)


def _locate(text: str, table: str | None, index: int | None, key: str | None) -> str:
    """'line N' of a key inside the index-th [[table]] of the file, as best as can be found."""
    lines = text.splitlines()
    start, end = 0, len(lines)
    if table is not None and index is not None:
        headers = [i for i, line in enumerate(lines) if line.strip() == f"[[{table}]]"]
        if index < len(headers):
            start = headers[index]
            later = [i for i, line in enumerate(lines)
                     if i > start and line.strip().startswith("[")]
            end = later[0] if later else len(lines)
        else:
            return ""
        if key is None:
            return f"line {start + 1}"
    if key is not None:
        for i in range(start, end):
            if re.match(rf"^\s*{re.escape(key)}\s*=", lines[i]):
                return f"line {i + 1}"
        return f"line {start + 1}" if table is not None else ""
    return ""


def parse_roster(text: str, *, today: date) -> RosterFile:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RosterError([f"not valid TOML: {exc}"]) from None
    try:
        roster = RosterFile.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = list(error["loc"])
            table = str(loc[0]) if loc else None
            index = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else None
            key = str(loc[2]) if len(loc) > 2 else (str(loc[1]) if len(loc) == 2 and index is None
                                                     else None)
            where = _locate(text, table, index, key)
            # A key of a table inside the entry ([aor.teams]): name it as `teams.channel`.
            if key is not None and len(loc) > 3 and isinstance(loc[3], str):
                key = f"{key}.{loc[3]}"
            path = f"[[{table}]] #{index + 1}" if index is not None else (table or "file")
            name = f" key '{key}'" if key else ""
            message = str(error["msg"]).removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown key"
            problems.append(f"{where + ': ' if where else ''}{path}{name}: {message}")
        raise RosterError(problems) from None
    _cross_check(roster, text, today)
    return roster


def _cross_check(roster: RosterFile, text: str, today: date) -> None:
    problems: list[str] = []
    people = {p.user: p for p in roster.person}
    aors = {a.id for a in roster.aor}

    def at(table: str, index: int, key: str) -> str:
        where = _locate(text, table, index, key)
        return f"{where + ': ' if where else ''}[[{table}]] #{index + 1} key '{key}'"

    holders: dict[tuple[Platform, str], str] = {}
    for i, p in enumerate(roster.person):
        for platform, external in p.identities().items():
            holder = holders.setdefault((platform, external), p.user)
            if holder != p.user:
                key = platform.value if p.slack or p.teams else "user"
                problems.append(f"{at('person', i, key)}: {platform.value} id {external} is "
                                f"also {holder}'s")
    seen: set[str] = set()
    for i, p in enumerate(roster.person):
        if p.user in seen:
            problems.append(f"{at('person', i, 'user')}: user {p.user} is listed twice")
        seen.add(p.user)
        if p.aor is not None and p.aor not in aors:
            problems.append(f"{at('person', i, 'aor')}: no [[aor]] with id '{p.aor}'")
        if p.training_completed is not None and p.training_completed > today:
            problems.append(f"{at('person', i, 'training_completed')}: is in the future")
    seen = set()
    for i, a in enumerate(roster.aor):
        if a.id in seen:
            problems.append(f"{at('aor', i, 'id')}: AOR {a.id} is listed twice")
        seen.add(a.id)
        for key, role in (("supervisors", Role.supervisor), ("managers", Role.manager)):
            for user in getattr(a, key):
                if user not in people:
                    problems.append(f"{at('aor', i, key)}: {user} has no [[person]] entry")
                elif role not in people[user].roles:
                    problems.append(f"{at('aor', i, key)}: {user} lacks the '{role}' role")
    if len({c.id for c in roster.contact}) != len(roster.contact):
        problems.append("[[contact]]: an id is listed twice")
    if problems:
        raise RosterError(problems)


def import_roster(ctx: Ctx, roster: RosterFile, *, source: str) -> ImportReport:
    """Make the database match the file; record every change. People and AORs missing from
    the file are deactivated, not deleted: the record refers to them."""
    session, report = ctx.session, ImportReport()

    def change(action: str, **payload: Any) -> None:
        _change(ctx, report, action, **payload)

    for aor in roster.aor:
        _upsert(ctx, report, Aor, aor.id, {"name": aor.name, "channel": aor.channel,
                                           "active": True}, kind="aor")
        identities.sync_aor(ctx, change, aor.id, _channels(aor))
    session.flush()
    no_longer_officers: set[str] = set()
    for entry in roster.person:
        _upsert(ctx, report, Person, entry.user,
                {"name": entry.name, "email": entry.email, "aor_id": entry.aor,
                 "timezone": entry.timezone, "active": True}, kind="person")
        session.flush()
        roles = {r.value for r in entry.roles}
        current = set(session.exec(select(PersonRole.role).where(PersonRole.user_id == entry.user)))
        if roles != current:
            session.execute(delete(PersonRole).where(col(PersonRole.user_id) == entry.user))
            session.add_all(PersonRole(user_id=entry.user, role=Role(r)) for r in sorted(roles))
            change("roles_changed", user=entry.user, roles=sorted(roles),
                   previous=sorted(current))
            if Role.officer.value in current - roles:
                no_longer_officers.add(entry.user)
        identities.sync_person(ctx, change, entry.user, entry.identities())
        if entry.training_completed is not None:
            record_training(ctx, entry.user, entry.training_completed, source=source,
                            report=report)
    departed = _deactivate_missing(ctx, report, Person, {p.user for p in roster.person},
                                   kind="person")
    _deactivate_missing(ctx, report, Aor, {a.id for a in roster.aor}, kind="aor")
    session.flush()
    _end_delegations_of_departed(ctx, report)
    for aor in roster.aor:
        chain = list(session.exec(
            select(AorApprover.user_id).where(AorApprover.aor_id == aor.id)
            .order_by(col(AorApprover.position))
        ))
        if chain != aor.supervisors:
            session.execute(delete(AorApprover).where(col(AorApprover.aor_id) == aor.id))
            session.add_all(AorApprover(aor_id=aor.id, position=i, user_id=u)
                            for i, u in enumerate(aor.supervisors))
            change("approvers_changed", aor=aor.id, chain=aor.supervisors, previous=chain)
        managers = set(session.exec(select(AorManager.user_id)
                                    .where(AorManager.aor_id == aor.id)))
        if managers != set(aor.managers):
            session.execute(delete(AorManager).where(col(AorManager.aor_id) == aor.id))
            session.add_all(AorManager(aor_id=aor.id, user_id=u) for u in aor.managers)
            change("managers_changed", aor=aor.id, managers=sorted(aor.managers))
    for contact in roster.contact:
        _upsert(ctx, report, Contact, contact.id,
                {"name": contact.name, "channel": contact.channel, "active": True},
                kind="contact")
    _deactivate_missing(ctx, report, Contact, {c.id for c in roster.contact}, kind="contact")
    session.flush()
    _tell_approvers_of_orphaned_cases(ctx, set(departed) | no_longer_officers)
    ctx.record("admin", "roster.imported", source=source, changes=len(report.changes))
    return report


def service_url_problems(roster: RosterFile, allowed_hosts: frozenset[str]) -> list[str]:
    """AORs whose Teams `service_url` is not on a host the bot's token may be sent to (the
    cloud's Bot Connector, or NOTICEBOT_TEAMS_SERVICE_URL's): refused at import, not found
    message by message at delivery."""
    return [f"aor {aor.id}: teams service_url {aor.teams.service_url} is not on the Bot "
            f"Connector host of this deployment's Teams cloud ({', '.join(sorted(allowed_hosts))})"
            "; set NOTICEBOT_TEAMS_SERVICE_URL if your tenant uses another"
            for aor in roster.aor
            if aor.teams is not None and host_of(aor.teams.service_url) not in allowed_hosts]


def _channels(aor: AorEntry) -> dict[Platform, AorChannel]:
    """The AOR's channel on each platform, as the file gives them."""
    found = {}
    if aor.channel is not None:
        found[Platform.slack] = AorChannel(aor_id=aor.id, platform=Platform.slack,
                                           conversation=aor.channel)
    if aor.teams is not None:
        found[Platform.teams] = AorChannel(aor_id=aor.id, platform=Platform.teams,
                                           conversation=aor.teams.channel, team=aor.teams.team,
                                           service_url=aor.teams.service_url)
    return found


def _tell_approvers_of_orphaned_cases(ctx: Ctx, gone: set[str]) -> None:
    """Officers who left the roster (or lost the officer role) in this import may leave open
    cases behind: each AOR's approvers are told at once, so that one of them reassigns the case
    (§5.3, §4.3); the managers' digest flags it until then."""
    if not gone:
        return
    cases = ctx.session.exec(
        select(Case).where(col(Case.officer).in_(sorted(gone)), Case.stage != Stage.closed)
        .order_by(col(Case.id))).all()
    for case in cases:
        ctx.state("case.officer_gone", case_id=case.id, officer=case.officer)
        message = Message(
            title=f"{case.id}: its officer left the roster",
            text=f"{mention(case.officer)} is no longer an officer on the roster. Case {case.id} "
            f"(AOR {case.aor_id}) waits for another trained officer of the AOR: "
            f"`/notice reassign {case.id} @officer`.",
            section="§5.3, §4.3",
        )
        for approver in access.approver_chain(ctx.session, case.aor_id):
            ctx.send(DestinationKind.dm, approver, message, case_id=case.id)


def _end_delegations_of_departed(ctx: Ctx, report: ImportReport) -> None:
    """A delegation ends when its delegate or its FRO leaves the roster (§4.2): it ends as of
    yesterday, so it is not in force today, and the end is recorded."""
    for delegation in ctx.session.exec(
            select(Delegation).where(col(Delegation.until) >= ctx.today)
            .order_by(col(Delegation.id))).all():
        gone = [user for user in (delegation.delegator, delegation.delegate)
                if (found := ctx.session.get(Person, user)) is None or not found.active]
        if not gone:
            continue
        delegation.until = ctx.today - timedelta(days=1)
        ctx.session.add(delegation)
        report.changes.append(f"delegation {delegation.id} ended: {', '.join(gone)} left")
        ctx.state("delegation.ended", aor=delegation.aor_id, delegator=delegation.delegator,
                  delegate=delegation.delegate, left_the_roster=gone)


def _change(ctx: Ctx, report: ImportReport, action: str, **payload: Any) -> None:
    report.changes.append(f"{action} {payload}")
    ctx.state(f"roster.{action}", **payload)


def _upsert(ctx: Ctx, report: ImportReport, model: type[SQLModel], key: str,
            wanted: dict[str, Any], *, kind: str) -> None:
    """Insert the row or bring its columns to `wanted`, recording what changed."""
    existing = ctx.session.get(model, key)
    if existing is None:
        primary = model.__table__.primary_key.columns.keys()[0]  # type: ignore[attr-defined]
        ctx.session.add(model(**{primary: key, **wanted}))
        _change(ctx, report, f"{kind}_added", id=key)
    elif {k: getattr(existing, k) for k in wanted} != wanted:
        for name, value in wanted.items():
            setattr(existing, name, value)
        ctx.session.add(existing)
        _change(ctx, report, f"{kind}_updated", id=key, **wanted)


def _deactivate_missing(ctx: Ctx, report: ImportReport, model: type[Aor | Person | Contact],
                        listed: set[str], *, kind: str) -> list[str]:
    """Deactivate the active rows not `listed`; returns their keys."""
    gone = []
    primary = model.__table__.primary_key.columns.keys()[0]  # type: ignore[union-attr]
    active = model.active
    for row in ctx.session.exec(select(model).where(col(active).is_(True))).all():
        key = getattr(row, primary)
        if key not in listed:
            row.active = False
            ctx.session.add(row)
            _change(ctx, report, f"{kind}_deactivated", id=key)
            gone.append(key)
    return gone


def record_training(ctx: Ctx, user_id: str, completed_on: date, *, source: str,
                    report: ImportReport | None = None) -> bool:
    """Add a training completion (§6 tracks them); False if it was already on record."""
    session = ctx.session
    if completed_on > ctx.today:
        raise RosterError([f"training date {completed_on.isoformat()} is in the future"])
    if session.get(Person, user_id) is None:
        raise RosterError([f"{user_id} is not on the roster"])
    exists = session.exec(select(TrainingCompletion).where(
        TrainingCompletion.user_id == user_id, TrainingCompletion.completed_on == completed_on
    )).first()
    if exists is not None:
        return False
    session.add(TrainingCompletion(user_id=user_id, completed_on=completed_on, source=source,
                                   recorded_at=ctx.now))
    ctx.state("training.recorded", user=user_id, completed_on=completed_on, source=source)
    session.flush()
    reminders.on_training(ctx, user_id)
    if report is not None:
        report.changes.append(f"training {user_id} {completed_on.isoformat()}")
    return True
