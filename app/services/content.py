"""Whether a file's content, as libmagic reads it, agrees with its extension."""

from __future__ import annotations

import mimetypes

# Types libmagic may report for the same kind of content, keyed by the canonical one.
ALIASES: dict[str, frozenset[str]] = {
    "audio/x-wav": frozenset({"audio/wav", "audio/x-wav", "audio/vnd.wave"}),
    "application/gzip": frozenset({"application/gzip", "application/x-gzip"}),
    "image/vnd.microsoft.icon": frozenset({"image/vnd.microsoft.icon", "image/x-icon"}),
    "application/x-msdownload": frozenset(
        {"application/x-dosexec", "application/vnd.microsoft.portable-executable"}
    ),
    "audio/mp4": frozenset({"audio/mp4", "audio/x-m4a", "video/mp4"}),
    "application/x-rar-compressed": frozenset({"application/x-rar", "application/vnd.rar"}),
    "application/x-bzip2": frozenset({"application/x-bzip2", "application/bzip2"}),
    "application/x-xz": frozenset({"application/x-xz"}),
    "application/x-7z-compressed": frozenset({"application/x-7z-compressed"}),
}
# Text formats: any text content is accepted (libmagic often says just text/plain).
TEXT_LIKE = frozenset(
    {
        "application/json",
        "application/xml",
        "application/javascript",
        "application/x-sh",
        "application/sql",
        "application/x-yaml",
        "application/yaml",
        "application/toml",
        "image/svg+xml",
        "application/x-ndjson",
    }
)
TEXT_DETECTED = frozenset(
    {"application/json", "application/xml", "application/csv", "image/svg+xml"}
)
# Zip-based documents: older libmagic reports the container.
ZIP_BASED_PREFIXES = (
    "application/vnd.openxmlformats-officedocument.",
    "application/vnd.oasis.opendocument.",
    "application/epub+zip",
    "application/java-archive",
)
OLE_BASED = frozenset(
    {
        "application/msword",
        "application/vnd.ms-excel",
        "application/vnd.ms-powerpoint",
        "application/vnd.ms-outlook",
    }
)
OLE_DETECTED = frozenset(
    {"application/CDFV2", "application/x-ole-storage", "application/vnd.ms-office"}
)

_types = mimetypes.MimeTypes()
for _ext, _type in {
    ".md": "text/markdown",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".webp": "image/webp",
    ".heic": "image/heic",
}.items():
    _types.add_type(_type, _ext)


def expected_type(extension: str) -> str | None:
    """The MIME type an extension (without the dot) stands for, or None if unknown."""
    if not extension:
        return None
    guessed, _ = _types.guess_type(f"x.{extension}", strict=False)
    return guessed


def is_text(mime: str) -> bool:
    """Whether a detected type is text."""
    return mime.startswith("text/") or mime in TEXT_DETECTED


def agrees(expected: str, detected: str) -> bool:
    """Whether content of type `detected` is acceptable under a name expecting `expected`."""
    if expected == detected or expected == "application/octet-stream":
        return True
    if detected in ALIASES.get(expected, ()):
        return True
    if expected.startswith("text/") or expected in TEXT_LIKE:
        return is_text(detected)
    if expected.startswith(ZIP_BASED_PREFIXES):
        return detected in {"application/zip", "application/octet-stream"} or detected.startswith(
            ZIP_BASED_PREFIXES
        )
    if expected in OLE_BASED:
        return detected in OLE_BASED or detected in OLE_DETECTED
    return False


def resolve(extension: str, detected: str) -> tuple[str, str | None]:
    """The MIME type to record, and an error message when content and name disagree."""
    expected = expected_type(extension)
    if expected is None:
        return detected, None
    if agrees(expected, detected):
        return expected, None
    return detected, mismatch_message(extension, detected, expected)


def mismatch_message(extension: str, detected: str, expected: str) -> str:
    """Why a file failed when its content is not what its extension says (the file's
    `error_message`; `failed_on_extension` reads it back)."""
    return f"content is {detected} but .{extension} expects {expected}"


def failed_on_extension(error_message: str | None) -> bool:
    """Whether a failed file's error says only that its content did not match its name's
    extension, so another name may make it valid.

    Read back from the message `resolve` wrote (mismatch_message): the whole message must
    be that wording, its extension one Coffer knows, with the type that extension expects
    and a detected type that does not agree with it.
    """
    prefix = "content is "
    if error_message is None or not error_message.startswith(prefix):
        return False
    detected, but, rest = error_message[len(prefix) :].partition(" but .")
    extension, expects, expected = rest.rpartition(" expects ")
    if not (but and expects and detected and extension):
        return False
    # A MIME type is one word: anything else is some other message that happens to match.
    if any(ch.isspace() for ch in detected) or expected_type(extension) != expected:
        return False
    return error_message == mismatch_message(extension, detected, expected) and not agrees(
        expected, detected
    )


# Types a browser runs, renders as a document or applies as a style when a page of Coffer's
# origin names the bytes (a <script src>, a stylesheet, a frame, an XSLT): uploaded bytes of
# these types are served as opaque octets, so `nosniff` makes the browser refuse them.
# JavaScript's MIME types are WHATWG's list (mimesniff, "JavaScript MIME type").
JAVASCRIPT_TYPES = frozenset(
    {
        "application/ecmascript",
        "application/javascript",
        "application/x-ecmascript",
        "application/x-javascript",
        "text/ecmascript",
        "text/javascript",
        "text/javascript1.0",
        "text/javascript1.1",
        "text/javascript1.2",
        "text/javascript1.3",
        "text/javascript1.4",
        "text/javascript1.5",
        "text/jscript",
        "text/livescript",
        "text/x-ecmascript",
        "text/x-javascript",
    }
)
ACTIVE_TYPES = JAVASCRIPT_TYPES | {
    "text/html",
    "text/css",
    "text/xml",
    "text/xsl",
    "application/xml",
    "application/xhtml+xml",
    "image/svg+xml",
    "application/wasm",
    "application/x-shockwave-flash",
    "text/x-component",
    "multipart/x-mixed-replace",
}
OPAQUE = "application/octet-stream"


def served_type(mime_type: str | None) -> str:
    """The Content-Type a stored file's bytes are served with: its validated type, unless
    a browser could run or render that type in Coffer's origin."""
    if not mime_type:
        return OPAQUE
    essence = mime_type.split(";", 1)[0].strip().lower()
    if essence in ACTIVE_TYPES or essence.endswith(("+xml", "/xml")) or "script" in essence:
        return OPAQUE
    return mime_type
