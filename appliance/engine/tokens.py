"""Janus signed tokens (``token_auth_secret``): minting and reading the expiry.

A token is ``<expiry>,janus,<plugin>[,<plugin>...]:<signature>`` where the
signature is the base64 HMAC-SHA1 of the part before ``:`` keyed with the
server's secret. Janus refuses expired and forged tokens alike.

>>> token = mint_token("secret", ttl=parse_ttl("24h"), now=1_700_000_000)
>>> token.split(":")[0]
'1700086400,janus,janus.plugin.videoroom'
>>> token_expiry(token)
1700086400
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time

from .janus import VIDEOROOM

_TTL = re.compile(r"(\d+)\s*([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def mint_token(
    secret: str | bytes,
    ttl: float,
    plugins: tuple[str, ...] = (VIDEOROOM,),
    now: float | None = None,
) -> str:
    """A token valid for ``ttl`` seconds from ``now`` for ``plugins``."""
    key = secret.encode() if isinstance(secret, str) else secret
    expiry = int((time.time() if now is None else now) + ttl)
    data = ",".join([str(expiry), "janus", *plugins])
    signature = base64.b64encode(hmac.new(key, data.encode(), hashlib.sha1).digest())
    return f"{data}:{signature.decode()}"


def token_expiry(token: str) -> int | None:
    """The expiry (Unix time) a token claims, or None if it has no readable one."""
    head = token.split(":", 1)[0]
    try:
        return int(head.split(",", 1)[0])
    except ValueError:
        return None


def parse_ttl(text: str) -> int:
    """Seconds from ``"90"``, ``"90s"``, ``"15m"``, ``"24h"`` or ``"7d"``."""
    match = _TTL.fullmatch(text.strip())
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"bad duration {text!r}: use a positive number with s, m, h or d")
    return int(match.group(1)) * _UNITS[match.group(2)]
