r"""Reading a secret (a token, Janus's token secret) from a file: one rule for all.

The file is opened without blocking and checked on the open descriptor before
a byte is read: it must be a regular file (a FIFO would hang the reader,
``/dev/zero`` exhaust it), at most ``MAX_SIZE`` bytes, owned by root or by the
user reading it, neither readable nor writable by others, nor writable by its
group (group read is allowed, for a service's group). The secret is the file's
UTF-8 text without surrounding white space: one printable line, not empty.

>>> path = tmp / "token"
>>> _ = path.write_text("1700086400,janus,janus.plugin.videoroom:c2lnbmF0dXJl\n")
>>> path.chmod(0o640)
>>> read_secret_file(path)
'1700086400,janus,janus.plugin.videoroom:c2lnbmF0dXJl'
>>> path.chmod(0o644)
>>> read_secret_file(path)
Traceback (most recent call last):
...
appliance.app.secretfile.SecretFileError: ... is readable by others (mode 0644); chmod 600 (or 640) it
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

MAX_SIZE = 64 * 1024


class SecretFileError(Exception):
    """Why a secret file was refused, in one line; ``permissions`` when it was its mode or owner."""

    def __init__(self, message: str, permissions: bool = False) -> None:
        super().__init__(message)
        self.permissions = permissions


def read_secret_file(path: Path | str) -> str:
    """The secret in ``path``; raises :class:`SecretFileError` (see the module's rule)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise SecretFileError(f"cannot read {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SecretFileError(f"{path} is not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode & (stat.S_IRWXO | stat.S_IWGRP | stat.S_IXGRP):
            who = ("readable by others" if mode & stat.S_IROTH else "writable by others" if mode & stat.S_IWOTH
                   else "writable by its group" if mode & stat.S_IWGRP else "executable by others")
            raise SecretFileError(f"{path} is {who} (mode {mode:04o}); chmod 600 (or 640) it", permissions=True)
        if info.st_uid not in (0, os.geteuid()):
            raise SecretFileError(f"{path} belongs to uid {info.st_uid}, not to root or to uid {os.geteuid()}",
                                  permissions=True)
        if info.st_size > MAX_SIZE:
            raise SecretFileError(f"{path} is {info.st_size} bytes; a secret is at most {MAX_SIZE}")
        data = os.read(fd, MAX_SIZE + 1)
    finally:
        os.close(fd)
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise SecretFileError(f"{path} is not UTF-8 text (byte {exc.start})") from None
    if not text:
        raise SecretFileError(f"{path} is empty")
    if not text.isprintable():
        raise SecretFileError(f"{path} holds more than one line, or control characters")
    return text
