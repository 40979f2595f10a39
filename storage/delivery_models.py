"""Tables of platform-neutral delivery: which platforms a person and an AOR are reachable on.

A person's noticebot id (`person.user_id`) is not any platform's id: each platform's id for the
person is an identity here. An AOR's channel on each platform is an `aor_channel` row, and the
1:1 conversation a platform opened for a person is a `dm_conversation` row.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from config.platforms import Platform as Platform
from storage.types import EnumText, UTCDateTime


class PersonIdentity(SQLModel, table=True):
    """A person as one platform knows them (Slack user id, Entra object id)."""

    __tablename__ = "person_identity"
    __table_args__ = (UniqueConstraint("platform", "external_id",
                                       name="uq_person_identity_external"),)
    user_id: str = Field(foreign_key="person.user_id", primary_key=True, max_length=32)
    platform: Platform = Field(primary_key=True, sa_type=EnumText(Platform, length=16))
    external_id: str = Field(max_length=128)


class AorChannel(SQLModel, table=True):
    """An AOR's channel on one platform. Teams also needs the team and the service URL the
    channel's conversation is reached through."""

    __tablename__ = "aor_channel"
    aor_id: str = Field(foreign_key="aor.id", primary_key=True, max_length=32)
    platform: Platform = Field(primary_key=True, sa_type=EnumText(Platform, length=16))
    conversation: str = Field(max_length=256)  # Slack channel id, Teams channel conversation
    team: str | None = Field(default=None, max_length=256)
    service_url: str | None = Field(default=None, max_length=512)


class DmConversation(SQLModel, table=True):
    """The 1:1 conversation a platform gave for a person (by their id there), kept so that it is
    asked for once, not once per process and restart (Teams: a create-conversation call)."""

    __tablename__ = "dm_conversation"
    platform: Platform = Field(primary_key=True, sa_type=EnumText(Platform, length=16))
    identity: str = Field(primary_key=True, max_length=128)
    conversation: str = Field(max_length=256)
    opened_at: datetime = Field(sa_type=UTCDateTime)


class CredentialsOutage(SQLModel, table=True):
    """A platform refusing the bot's credentials, once the admins have been told: every process
    that delivers to the platform watches for itself, and this row makes one of them tell of
    an outage's start, and one of them of its end (`storage.outages`)."""

    __tablename__ = "credentials_outage"
    platform: Platform = Field(primary_key=True, sa_type=EnumText(Platform, length=16))
    since: datetime = Field(sa_type=UTCDateTime)  # as first noticed by the process that told
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
