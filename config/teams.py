"""Microsoft Teams settings (env prefix NOTICEBOT_TEAMS_), kept apart from the main Settings so
the Teams adapter adds one field there and nothing else.

A cloud brings its own login authority, bot scope, token issuer and OpenID metadata; the adapter
takes those from the Teams SDK's presets (handlers/teams/clouds.py). Here only what an operator
sets, and the checks that refuse a start that could not work or would not be safe."""

from __future__ import annotations

from enum import StrEnum
from urllib.parse import urlsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class TeamsCloud(StrEnum):
    """Where the agency's Microsoft 365 tenant lives."""

    public = "public"  # commercial Microsoft 365
    gcc = "gcc"  # GCC (Moderate): commercial Azure and login, government Teams service
    gcc_high = "gcc_high"  # GCC High: Azure Government
    dod = "dod"  # DoD: Azure Government


# The Entra login host each cloud's tokens come from: a registration in the wrong cloud gets
# tokens nobody accepts, so a mismatch is refused at start instead of failing every send.
LOGIN_HOSTS: dict[TeamsCloud, str] = {
    TeamsCloud.public: "login.microsoftonline.com",
    TeamsCloud.gcc: "login.microsoftonline.com",
    TeamsCloud.gcc_high: "login.microsoftonline.us",
    TeamsCloud.dod: "login.microsoftonline.us",
}

# Where Teams serves bots in each cloud, when no activity has told us yet (activities carry
# their own serviceUrl, which is preferred).
SERVICE_URLS: dict[TeamsCloud, str] = {
    TeamsCloud.public: "https://smba.trafficmanager.net/teams",
    TeamsCloud.gcc: "https://smba.infra.gcc.teams.microsoft.com/teams",
    TeamsCloud.gcc_high: "https://smba.infra.gov.teams.microsoft.us/teams",
    TeamsCloud.dod: "https://smba.infra.dod.teams.microsoft.us/teams",
}


# The domains of each side's Bot Connector: a token of one side sent to a host of the other is
# refused there (and leaves the bot's credentials with the wrong cloud).
GOVERNMENT_CLOUDS = frozenset({TeamsCloud.gcc_high, TeamsCloud.dod})
GOVERNMENT_DOMAINS = ("microsoft.us",)
COMMERCIAL_DOMAINS = ("trafficmanager.net", "microsoft.com")


def in_domains(host: str, domains: tuple[str, ...]) -> bool:
    return any(host == domain or host.endswith(f".{domain}") for domain in domains)


def host_of(url: str) -> str:
    """A URL's host as compared: lower case, without a fully qualified name's final dot."""
    return (urlsplit(url).hostname or "").lower().rstrip(".")


class TeamsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NOTICEBOT_TEAMS_", env_file=".env",
                                      env_file_encoding="utf-8", extra="ignore")

    cloud: TeamsCloud = TeamsCloud.public
    # The Entra app registration behind the Azure Bot (single-tenant: the agency's tenant).
    client_id: str = ""
    tenant_id: str = ""
    client_secret: SecretStr = SecretStr("")
    # Or a certificate: one PEM file holding the private key and its certificate.
    certificate_file: str = ""
    # Only to pin the login authority: https://<the cloud's login host>/<tenant id>.
    authority: str = ""
    # Empty: the cloud's (SERVICE_URLS). Its host is also the only one, beside the cloud's,
    # that the bot's token is ever sent to (an AOR's service_url elsewhere is refused).
    service_url: str = ""
    port: int = Field(default=3978, ge=1, le=65535)
    # The public host Teams calls (https://<host>/api/messages); goes into the app package.
    public_host: str = ""
    # Development without Azure only: accept requests without a Bot Framework token.
    allow_unauthenticated: bool = False

    def login_authority(self) -> str:
        host = LOGIN_HOSTS[self.cloud]
        return self.authority.rstrip("/") or f"https://{host}/{self.tenant_id}"

    def fallback_service_url(self) -> str:
        return (self.service_url or SERVICE_URLS[self.cloud]).rstrip("/")

    def service_hosts(self) -> frozenset[str]:
        """The hosts the bot's token may be sent to: the cloud's Bot Connector and the one
        NOTICEBOT_TEAMS_SERVICE_URL names."""
        return frozenset({host_of(SERVICE_URLS[self.cloud]), host_of(self.fallback_service_url())})

    def problems(self, *, production: bool) -> list[str]:
        """Why `noticebot teams` must not start with these settings (empty: it may)."""
        found: list[str] = []
        if self.authority:
            found += self._authority_problems()
        if self.allow_unauthenticated:
            if production:
                found.append("NOTICEBOT_TEAMS_ALLOW_UNAUTHENTICATED is refused when "
                             "NOTICEBOT_ENV=production: every request must carry a valid token")
            return found
        if not self.client_id:
            found.append("NOTICEBOT_TEAMS_CLIENT_ID is required (the bot's app id)")
        if not self.tenant_id:
            found.append("NOTICEBOT_TEAMS_TENANT_ID is required (single-tenant registration)")
        if not self.client_secret.get_secret_value() and not self.certificate_file:
            found.append("NOTICEBOT_TEAMS_CLIENT_SECRET or NOTICEBOT_TEAMS_CERTIFICATE_FILE "
                         "is required")
        if production and self.service_url and urlsplit(self.service_url).scheme != "https":
            found.append("NOTICEBOT_TEAMS_SERVICE_URL must be https:// in production")
        if self.service_url:
            found += self._service_url_problems()
        return found

    def _service_url_problems(self) -> list[str]:
        """A Bot Connector of the other side (commercial or government) than the cloud's: every
        1:1 card would fail there as a credentials outage."""
        host = host_of(self.service_url)
        government = self.cloud in GOVERNMENT_CLOUDS
        other = COMMERCIAL_DOMAINS if government else GOVERNMENT_DOMAINS
        if not in_domains(host, other):
            return []
        side = "a commercial" if government else "a government"
        return [f"NOTICEBOT_TEAMS_SERVICE_URL ({host}) is {side} Teams host, not one of "
                f"NOTICEBOT_TEAMS_CLOUD={self.cloud.value} (its default is "
                f"{SERVICE_URLS[self.cloud]}): the bot's tokens would be refused there"]

    def _authority_problems(self) -> list[str]:
        """The authority must be the cloud's login host and this single-tenant registration's
        tenant: anything else passes a start and then fails every token."""
        parts = urlsplit(self.authority)
        host, path = (parts.hostname or "").lower(), parts.path.strip("/")
        wanted = f"https://{LOGIN_HOSTS[self.cloud]}/{self.tenant_id or '<tenant id>'}"
        if host != LOGIN_HOSTS[self.cloud]:
            return [f"NOTICEBOT_TEAMS_AUTHORITY ({host or self.authority}) is not the login "
                    f"authority of NOTICEBOT_TEAMS_CLOUD={self.cloud.value} "
                    f"({LOGIN_HOSTS[self.cloud]}): the bot's tokens would be refused"]
        if parts.scheme != "https" or "/" in path or not path or (
                self.tenant_id and path.lower() != self.tenant_id.lower()):
            return [f"NOTICEBOT_TEAMS_AUTHORITY must be {wanted} (the cloud's login host and "
                    f"NOTICEBOT_TEAMS_TENANT_ID), not {self.authority}"]
        return []
