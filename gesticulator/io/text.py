"""Reading text files people hand us (scripts, transcripts, gesture files, timelines) whatever
encoding their editor chose.

UTF-8 (with or without a BOM) and UTF-16 (with a BOM, or without one when every other byte is
NUL) are read silently: they are unambiguous. Anything else is not UTF-8, and the likeliest
origin is a Western European "ANSI" editor (Notepad, old Praat, Excel's CSV): it is read as
Windows-1252 (Latin-1 for its five undefined bytes) with one `TextEncodingWarning` that names the
file and the fix, because a wrong guess only shows as odd accents, never as an error. Callers that
cannot afford a guess (file names in a batch manifest) pass `legacy=False` to get a one-line
`InputFileError` instead.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from gesticulator.errors import InputFileError


class TextEncodingWarning(UserWarning):
    """A text file was not UTF-8/UTF-16 and was read as Windows-1252."""


def decode_text(data: bytes, name: str, *, legacy: bool = True, fix: str | None = None) -> str:
    """Text from the bytes of the file `name` (used in messages).

    BOMs first (Praat writes UTF-16 with a BOM), then UTF-16 without a BOM, then UTF-8, then
    (with `legacy`) Windows-1252 / Latin-1 with a warning; without `legacy` a non-UTF text is an
    `InputFileError` whose fix is `fix` (default: save it as UTF-8).
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")  # a stray surrogate must not crash the read
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    if len(data) >= 4 and b"\x00" in data[:4]:  # UTF-16 without a BOM: every other byte is NUL
        return data.decode("utf-16-le" if data[1] == 0 else "utf-16-be", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        if not legacy:
            raise InputFileError(
                f"{name} is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start})",
                fix or "save it as UTF-8",
            ) from None
    try:
        text = data.decode("cp1252")
        encoding = "Windows-1252"
    except UnicodeDecodeError:  # 0x81, 0x8d, 0x8f, 0x90, 0x9d are undefined in cp1252
        text = data.decode("latin-1")  # cannot fail
        encoding = "Latin-1"
    warnings.warn(
        f"{name} is not UTF-8; read it as {encoding} — if accented letters look wrong, save the file as UTF-8",
        TextEncodingWarning,
        stacklevel=3,
    )
    return text


def read_text(path: str | os.PathLike, what: str = "file", *, legacy: bool = True) -> str:
    """The text of a file (see `decode_text`); a missing or unreadable file is one-line error
    naming `what` (e.g. "script file")."""
    p = Path(path).expanduser()
    if not p.is_file():
        if p.is_dir():
            raise InputFileError(f"{what} {p} is a folder", f"give the path of the {what}")
        raise InputFileError(f"{what} not found: {p}", "check the path")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise InputFileError(f"cannot read {p}: {e.strerror}", "check the file's permissions") from None
    return decode_text(data, p.name, legacy=legacy)


__all__ = ["TextEncodingWarning", "decode_text", "read_text"]
