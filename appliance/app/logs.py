"""Logging: journald with structured fields under systemd, plain stderr otherwise.

Every journal entry carries the current room as ``ROOM=`` (and links add
``STREAM=``). No log line carries the token at any level: every handler
redacts the secrets it was given, and websockets, which logs each frame it
sends at DEBUG, is kept at INFO.

>>> record = logging.LogRecord("x", logging.INFO, "", 0, "sent %s", ("token-123:c2ln",), None)
>>> redactor = Redactor()
>>> redactor.add("token-123:c2ln")
>>> redactor.filter(record), record.getMessage()
(True, 'sent [secret]')
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def level_from_environment(default: str) -> str:
    """``APPLIANCE_LOG_LEVEL`` if it is one of :data:`LEVELS`, else ``default``."""
    level = os.environ.get("APPLIANCE_LOG_LEVEL", default).upper()
    return level if level in LEVELS else default


class Redactor(logging.Filter):
    """Replaces each secret it has been given (the token) in a record's message."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()

    def add(self, secret: str | None) -> None:
        if secret:
            self._secrets.add(secret)
            self._secrets.add(secret.rpartition(":")[2])  # a token's signature, alone

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secrets:
            message = redacted = record.getMessage()
            for secret in sorted(self._secrets, key=len, reverse=True):
                redacted = redacted.replace(secret, "[secret]")
            if redacted != message:
                record.msg, record.args = redacted, ()
        return True


REDACTOR = Redactor()
# The room being joined or in, for ROOM= on every journal entry.
current_room: list[str] = []


def _room_field(record: logging.LogRecord) -> bool:
    if not hasattr(record, "ROOM") and current_room:
        record.ROOM = current_room[0]
    return True


def configure_logging() -> None:
    """journald under systemd, stderr otherwise; the level from ``APPLIANCE_LOG_LEVEL``."""
    level = level_from_environment("INFO")
    if os.environ.get("JOURNAL_STREAM") or os.environ.get("INVOCATION_ID"):
        from systemd.journal import JournalHandler

        handler: logging.Handler = JournalHandler(SYSLOG_IDENTIFIER="appliance")
        handler.setFormatter(logging.Formatter("%(message)s"))  # level and logger are journal fields
        handler.addFilter(_room_field)
    else:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(REDACTOR)
    logging.basicConfig(level=level, handlers=[handler], force=True)
    logging.captureWarnings(True)  # gpiozero's pin-factory fallbacks, as log lines
    logging.getLogger("aioice").setLevel(logging.WARNING)
    logging.getLogger("aiortc").setLevel(logging.WARNING)
    logging.getLogger("websockets").setLevel(logging.INFO)
