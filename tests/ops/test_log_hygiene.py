"""What could carry a subject detail or a secret into a log line never does."""

from __future__ import annotations

import io
import json
import logging

from bot.ops.logs import configure_logging, log_context
from config.settings import LogFormat, Settings


def test_database_errors_never_carry_the_statements_values(database_url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    from storage.db import create_db_engine

    engine = create_db_engine(database_url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT * FROM no_such_table WHERE x = :v"),
                               {"v": "Ivan Testperson"})
    except SQLAlchemyError as error:
        assert "Ivan Testperson" not in str(error)
        assert "hidden due to hide_parameters" in str(error)
    else:
        raise AssertionError("the statement should have failed")
    finally:
        engine.dispose()


def test_secret_values_are_masked_in_any_line_and_context_is_carried(settings: Settings) -> None:
    from pydantic import SecretStr

    secret = "xoxb-9999-secret-token-value"
    configured = settings.model_copy(update={"slack_bot_token": SecretStr(secret)})
    out = io.StringIO()
    configure_logging(configured, stream=out, log_format=LogFormat.json)
    with log_context(request_id="r1", platform="slack", actor="U0OFF1", case_id="RN-1"):
        logging.getLogger("anything").warning("token was %s", secret)
    line = json.loads(out.getvalue())
    assert secret not in out.getvalue() and line["message"] == "token was [redacted]"
    assert {k: line[k] for k in ("request_id", "platform", "actor", "case_id")} == {
        "request_id": "r1", "platform": "slack", "actor": "U0OFF1", "case_id": "RN-1"}
    out.truncate(0)
    out.seek(0)
    logging.getLogger("anything").warning("outside")
    assert "request_id" not in json.loads(out.getvalue())  # the context ended with its block
