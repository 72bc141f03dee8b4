"""Names: what the user sent, what is shown, and the key the bytes are stored under."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

from werkzeug.datastructures import Headers
from werkzeug.utils import secure_filename

MAX_DISPLAY_NAME_BYTES = 255
# The quoted filename parameter of a part's Content-Disposition, `\"` escapes allowed.
QUOTED_FILENAME_RE = re.compile(r'(?:^|;)\s*filename\s*=\s*"((?:\\"|[^"])*)"', re.IGNORECASE)
BACKSLASH_ESCAPE_RE = re.compile(r"\\(.)")


def sent_filename(parsed: str | None, content_disposition: str) -> str | None:
    """The file name as the client sent it, with its backslashes.

    werkzeug reads a quoted filename as an RFC 2616 quoted-string and drops every
    backslash, but browsers and most HTTP libraries escape only the double quote, so a
    Windows path like C:\\Users\\me\\a.txt would lose its separators.
    """
    match = QUOTED_FILENAME_RE.search(content_disposition)
    if parsed is None or match is None:
        return parsed
    quoted = match.group(1)
    # Only trust the raw value when it is the very parameter werkzeug decoded
    # (not a filename* one, which carries no backslash escapes).
    if BACKSLASH_ESCAPE_RE.sub(r"\1", quoted) != parsed:
        return parsed
    return quoted.replace('\\"', '"')


def display_name(raw: str | None) -> str:
    """The user's file name made safe to show: last path part, no control characters,
    at most 255 bytes of UTF-8. May be empty."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch) not in {"Cc", "Cf", "Cs"})
    name = name.strip()
    if name in {".", ".."}:
        # Path steps, not names.
        return ""
    encoded = name.encode("utf-8", "ignore")
    if len(encoded) > MAX_DISPLAY_NAME_BYTES:
        root, dot, ext = name.rpartition(".")
        # Keep a short extension when cutting, so the type check still sees it.
        if dot and root and 0 < len(ext.encode()) <= 16:
            budget = MAX_DISPLAY_NAME_BYTES - len(ext.encode()) - 1
            name = root.encode()[:budget].decode("utf-8", "ignore") + "." + ext
        else:
            name = encoded[:MAX_DISPLAY_NAME_BYTES].decode("utf-8", "ignore")
    return name


def disk_name(display: str) -> str:
    """The stored name: werkzeug's ASCII-safe form of the display name."""
    safe = secure_filename(display)
    extension = extension_of(display)
    if not safe or safe.startswith("."):
        safe = "file" + (f".{extension}" if extension and extension.isalnum() else "")
    return safe[:200]


def extension_of(name: str) -> str:
    """The lower-cased extension of a name without the dot, or ''."""
    root, dot, ext = name.rpartition(".")
    return ext.lower() if dot and root else ""


def object_key(organization_id: int, file_id: str, display: str) -> str:
    """The key a file's bytes are stored under, the same on every backend."""
    return f"{organization_id}/{file_id}/{disk_name(display)}"


def content_disposition(filename: str) -> str:
    """`attachment` with the name as werkzeug's send_file writes it (RFC 6266 filename*)."""
    headers = Headers()
    try:
        filename.encode("ascii")
    except UnicodeEncodeError:
        simple = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode("ascii")
        quoted = quote(filename, safe="!#$&+-.^_`|~")
        names = {"filename": simple, "filename*": f"UTF-8''{quoted}"}
        headers.set("Content-Disposition", "attachment", **names)
    else:
        headers.set("Content-Disposition", "attachment", filename=filename)
    return headers["Content-Disposition"]
