"""What `noticebot teams` (and a worker delivering to Teams) refuses to start with. Kept apart
from the SDK app so that the worker checks the same things without importing the SDK."""

from __future__ import annotations

from config.settings import Environment, Settings, secret_problem


class TeamsSettingsError(Exception):
    pass


def check_settings(settings: Settings) -> None:
    """Refuse to start what could not work or would not be safe (one line per problem). Slack's
    secrets are not asked for: settings check them only when one is set (a Teams-only
    deployment sets none)."""
    production = settings.environment is Environment.production
    problems = settings.teams.problems(production=production)
    secret = settings.teams.client_secret.get_secret_value()
    if production and secret and not settings.teams.certificate_file:
        problem = secret_problem(secret)
        if problem is not None:
            problems.append(f"NOTICEBOT_TEAMS_CLIENT_SECRET {problem}")
    if problems:
        raise TeamsSettingsError("; ".join(problems) + "; see README 'Connect to Teams'")
