"""Content-Disposition read and written: an uploaded part's file name, a download's header.

Pure functions of strings, importing nothing of Coffer, so that both the HTTP side and
storage may use them: app/multipart.py reads an uploaded part's name with sent_filename,
and the S3 backend presigns download URLs whose answer carries the header attachment()
builds, the one send_file writes when Coffer serves the bytes itself. The Storage
interface keeps taking a file name (download_url): only a backend that hands a download
to another server needs the header, so it builds it here, not its callers.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

from werkzeug.datastructures import Headers

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


def attachment(filename: str) -> str:
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
