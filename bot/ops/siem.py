"""Stream the record to an agency SIEM (Splunk and the like): each new record entry, once its
transaction has committed, as one JSON line on stdout or to syslog.

Only the entry's metadata and digests leave: sequence number, time, actor, kind, action, case
id, the payload's SHA-256 digest and the chain hashes; never the payload itself (which holds
subject details and is sealed at rest). A SIEM holding these lines can also check the chain's
head independently of the database.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
import threading
from typing import IO, Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from config.settings import Settings, SiemSink
from storage import record
from storage.models import RecordEntry

TYPE = "noticebot.record"


class SiemStream:
    def __init__(self, sink: SiemSink, *, address: str = "/dev/log",
                 stream: IO[str] | None = None) -> None:
        self.sink = sink
        self.stream = stream
        self.lock = threading.Lock()
        self.syslog: logging.handlers.SysLogHandler | None = None
        if sink is SiemSink.syslog:
            self.syslog = logging.handlers.SysLogHandler(
                address=_syslog_address(address),
                facility=logging.handlers.SysLogHandler.LOG_AUTH)

    def emit(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, sort_keys=True, separators=(",", ":"))
        if self.syslog is not None:
            record = logging.LogRecord("noticebot.siem", logging.INFO, __file__, 0,
                                       "noticebot: %s", (line,), None)
            self.syslog.emit(record)
            return
        with self.lock:
            out = self.stream or sys.stdout
            out.write(line + "\n")
            out.flush()

    def close(self) -> None:
        if self.syslog is not None:
            self.syslog.close()


def _syslog_address(address: str) -> str | tuple[str, int]:
    if address.startswith("/"):
        return address
    host, _, port = address.rpartition(":")
    return (host or "localhost", int(port or 514))


def entry_line(entry: RecordEntry) -> dict[str, Any]:
    return {"type": TYPE, "seq": entry.seq, "at": entry.at.isoformat(), "actor": entry.actor,
            "kind": entry.kind, "action": entry.action, "case_id": entry.case_id,
            "payload_sha256": entry.payload_digest, "prev_hash": entry.prev_hash,
            "hash": entry.hash}


_stream: SiemStream | None = None


def _committed(session: Session) -> None:
    entries = [entry_line(entry) for entry in record.appended(session)]
    if _stream is None or not entries:
        return
    for entry in entries:
        try:
            _stream.emit(entry)
        except Exception:  # the SIEM being down must not fail the bot's work
            logging.getLogger(__name__).exception("could not stream record entry %s",
                                                  entry.get("seq"))


def _rolled_back(session: Session) -> None:
    record.appended(session)


def install_siem(settings: Settings, *, stream: IO[str] | None = None) -> SiemStream | None:
    """Start streaming committed record entries as the settings say (NOTICEBOT_SIEM)."""
    global _stream
    uninstall_siem()
    if settings.siem is SiemSink.off:
        return None
    _stream = SiemStream(settings.siem, address=settings.siem_syslog_address, stream=stream)
    event.listen(Session, "after_commit", _committed)
    event.listen(Session, "after_rollback", _rolled_back)
    return _stream


def uninstall_siem() -> None:
    global _stream
    if _stream is None:
        return
    event.remove(Session, "after_commit", _committed)
    event.remove(Session, "after_rollback", _rolled_back)
    _stream.close()
    _stream = None
