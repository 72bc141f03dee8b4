"""The endpoints whose request bodies are a file's bytes, and how each brings them."""

from __future__ import annotations

# The multipart upload: the one endpoint whose body is form data holding the file.
MULTIPART = "files.upload"
REQUEST_MULTIPART = "web.request_upload"
# The endpoints whose 413 is a file too large (the multipart ones).
MULTIPART_ENDPOINTS = frozenset({MULTIPART, REQUEST_MULTIPART})
# Each endpoint, and the name its bytes are counted under (metrics' `via`).
UPLOAD_VIA = {
    MULTIPART: "multipart",
    "uploads.create": "tus",
    "uploads.append": "tus",
    # An upload-only link's visitor (/r/<secret>): the form, and tus.
    REQUEST_MULTIPART: "multipart",
    "web.request_tus_create": "tus",
    "web.request_tus_append": "tus",
}
# Their bodies may be as large as a file (every other body has the JSON limit).
UPLOAD_ENDPOINTS = frozenset(UPLOAD_VIA)
