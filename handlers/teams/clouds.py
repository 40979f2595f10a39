"""Each TeamsCloud setting as the Teams SDK's CloudEnvironment preset (authority, bot scope,
issuer, OpenID metadata): one place, so inbound validation and outbound tokens never disagree."""

from __future__ import annotations

from microsoft_teams.api.auth.cloud_environment import (
    PUBLIC,
    US_GOV,
    US_GOV_DOD,
    CloudEnvironment,
)

from config.teams import LOGIN_HOSTS, TeamsCloud

# GCC (Moderate) runs on commercial Azure and the commercial Bot Framework: the PUBLIC preset.
PRESETS: dict[TeamsCloud, CloudEnvironment] = {
    TeamsCloud.public: PUBLIC,
    TeamsCloud.gcc: PUBLIC,
    TeamsCloud.gcc_high: US_GOV,
    TeamsCloud.dod: US_GOV_DOD,
}


def environment(cloud: TeamsCloud) -> CloudEnvironment:
    preset = PRESETS[cloud]
    # The settings' own table of login hosts and the SDK's must agree (an SDK upgrade that
    # moved one would otherwise send tokens to the wrong cloud).
    if preset.login_endpoint != f"https://{LOGIN_HOSTS[cloud]}":
        raise RuntimeError(f"the Teams SDK's {cloud.value} login endpoint changed: "
                           f"{preset.login_endpoint}")
    return preset
