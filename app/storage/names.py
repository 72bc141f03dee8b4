"""Names: what is shown of the name the user sent, and the key the bytes are stored under."""

from __future__ import annotations

import unicodedata

from werkzeug.utils import secure_filename

MAX_DISPLAY_NAME_BYTES = 255


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
