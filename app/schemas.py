"""Every request and response body of the API, once, as pydantic models.

The API's views read bodies and query strings with these models (app/api/inputs.py) and
build their answers with them; the pages read their forms with the same request models
(app/web/views.py), the webhook job renders an event's file with FileDetails, and the
OpenAPI document takes its component schemas from them (app/api/openapi_document.py). So
the module sits below app/api/ and app/web/ and imports neither. A validator here refuses
input by raising a PydanticCustomError whose type is the error code the client gets
(app/errors.py turns the first error into the 400 answer).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    ValidationError,
    WithJsonSchema,
    model_serializer,
)
from pydantic.json_schema import JsonSchemaValue, SkipJsonSchema
from pydantic_core import PydanticCustomError, core_schema

from .files import file_requests as file_requests_use
from .files.archive import MAX_SELECTION
from .files.listing import Order, Sort
from .files.retention import MAX_TRASH_RETENTION_DAYS, MAX_VERSIONS_KEPT
from .models import MAX_ID, MAX_NAME_KEY_LENGTH, FileStatus, Role, TokenAccess, isoformat
from .security import MAX_PASSWORD_BYTES, MIN_PASSWORD_LENGTH
from .services import accounts as accounts_service
from .services import activity as activity_service
from .services import links as links_service
from .services import tokens as tokens_service
from .services import webhooks as webhooks_service
from .services.accounts import MAX_EMAIL_LENGTH, MAX_ORG_NAME_LENGTH
from .services.tokens import MAX_TOKEN_NAME_LENGTH, TOKEN_PREFIX
from .services.webhooks import EventType

# Input caps that are no domain rule, only a bound on what a request may make Coffer read.
MAX_LOGIN_FIELD_LENGTH = 1024
MAX_INVITE_CODE_LENGTH = 256
MAX_PAGE = 10_000_000
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
# Plain ASCII digits; int() alone would also take "1_0", " 2", "+3" and digits of other
# scripts such as "٣". A leading minus passes here and is then answered as out of range.
DECIMAL_RE = re.compile(r"-?[0-9]+")

# ---- how a string field is read, and the JSON Schema that says exactly that ------------


def character_ranges(codes: list[int]) -> str:
    """The code points as the inside of a regex character class, runs written as ranges."""
    runs: list[list[int]] = []
    for code in codes:
        if runs and code == runs[-1][1] + 1:
            runs[-1][1] = code
        else:
            runs.append([code, code])
    return "".join(
        f"\\u{first:04x}" if first == last else f"\\u{first:04x}-\\u{last:04x}"
        for first, last in runs
    )


# What str.strip() removes, and the control characters (category Cc) Coffer refuses. The
# schema's patterns spell both out: JSON Schema's \s and Python's differ.
SPACE = character_ranges([code for code in range(0x3001) if chr(code).isspace()])
CONTROL = "\\u0000-\\u001f\\u007f-\\u009f"
EDGE = f"[^{SPACE}{CONTROL}]"
INNER = f"[^{CONTROL}]"


def text_pattern(max_length: int | None, *, optional: bool = False) -> str:
    """The raw strings whose trimmed value is 1 to `max_length` characters (any number when
    None) with no control character; with `optional`, blank ones too.

    The length is counted inside the pattern because it is the trimmed value's: a maxLength
    would count the spaces around it as well.
    """
    inner = "*" if max_length is None else f"{{0,{max_length - 2}}}"
    trimmed = EDGE if max_length == 1 else f"{EDGE}(?:{INNER}{inner}{EDGE})?"
    if optional:
        trimmed = f"(?:{trimmed})?"
    return f"^[{SPACE}]*{trimmed}[{SPACE}]*$"


# accounts.EMAIL_RE (one @, no space, a dot in the domain) and MAX_EMAIL_LENGTH, for the raw
# value: the lookahead bounds the address, which is the one run of non-space characters.
EMAIL_PART = f"[^@{SPACE}{CONTROL}]+"
EMAIL_PATTERN = (
    f"^[{SPACE}]*(?=[^{SPACE}]{{1,{MAX_EMAIL_LENGTH}}}[{SPACE}]*$)"
    f"{EMAIL_PART}@{EMAIL_PART}\\.{EMAIL_PART}[{SPACE}]*$"
)


def is_encodable(value: str) -> bool:
    """Whether the string is valid Unicode text, i.e. encodes as UTF-8."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def has_control_characters(value: str) -> bool:
    """Whether the string holds a control character (NUL, tab, newline, DEL, C1, ...)."""
    return any(unicodedata.category(ch) == "Cc" for ch in value)


@dataclass(frozen=True)
class Text:
    """A JSON string field as Coffer reads it: trimmed, without control characters, not blank.

    `trim=False, allow_control=True` reads a password as sent. An optional field reads
    null, absent and blank alike as None. The error messages lack the field's name, which
    the 400 answer puts in front.
    """

    max_length: int | None = None
    optional: bool = False
    trim: bool = True
    allow_control: bool = False

    def clean(self, raw: Any) -> str | None:
        """The field's value, or a PydanticCustomError whose type is the error code."""
        if raw is None:
            if self.optional:
                return None
            raise PydanticCustomError("missing_field", "is required")
        if not isinstance(raw, str):
            raise PydanticCustomError("invalid_field", "must be a string")
        value: str = raw
        if not is_encodable(value):
            # JSON may escape lone surrogates, which no UTF-8 text (nor database) can hold.
            raise PydanticCustomError("invalid_field", "must be valid Unicode text")
        if self.trim:
            value = value.strip()
        if not self.allow_control and has_control_characters(value):
            raise PydanticCustomError("invalid_field", "must not contain control characters")
        if not value:
            if self.optional:
                return None
            raise PydanticCustomError("missing_field", "is required")
        if self.max_length is not None and len(value) > self.max_length:
            raise PydanticCustomError(
                "invalid_field",
                "must be at most {max_length} characters",
                {"max_length": self.max_length},
            )
        return value

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        """Run `clean` in place of pydantic's own string checks."""
        return core_schema.no_info_before_validator_function(self.clean, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """The JSON Schema of exactly the raw strings `clean` takes."""
        text: dict[str, Any] = {"type": "string"}
        if self.trim and not self.allow_control:
            text["pattern"] = text_pattern(self.max_length, optional=self.optional)
        else:  # read as sent: the lengths are the raw value's
            if not self.optional:
                text["minLength"] = 1
            if self.max_length is not None:
                text["maxLength"] = self.max_length
        if self.optional:
            return {"anyOf": [text, {"type": "null"}]}
        return text


@dataclass(frozen=True)
class WholeNumber:
    """A query parameter of plain ASCII decimal digits (DECIMAL_RE) within bounds."""

    minimum: int
    maximum: int

    def parse(self, raw: Any) -> int:
        """The parameter's value, or a PydanticCustomError invalid_parameter."""
        value: int | None
        if isinstance(raw, int) and not isinstance(raw, bool):
            value = raw
        else:
            value = decimal_value(raw) if isinstance(raw, str) else None
        if value is None:
            raise PydanticCustomError("invalid_parameter", "must be a whole number")
        if not self.minimum <= value <= self.maximum:
            raise PydanticCustomError(
                "invalid_parameter",
                "must be between {minimum} and {maximum}",
                {"minimum": self.minimum, "maximum": self.maximum},
            )
        return value

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        """Run `parse` in place of pydantic's own integer parsing."""
        return core_schema.no_info_before_validator_function(self.parse, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """An integer within the bounds."""
        return {"type": "integer", "minimum": self.minimum, "maximum": self.maximum}


def decimal_value(raw: str) -> int | None:
    """The value of a plain ASCII decimal (a leading "-" allowed), or None for anything else."""
    if not DECIMAL_RE.fullmatch(raw):
        return None
    try:
        return int(raw)
    except ValueError:  # more digits than int() converts (thousands)
        return None


@dataclass(frozen=True)
class JsonInteger:
    """A JSON body number that is a whole number within bounds: 60 and 60.0 alike, never
    "60", true or 60.5."""

    minimum: int
    maximum: int
    # Whether JSON null is a value of the field (its schema then says so too).
    nullable: bool = False

    def parse(self, raw: Any) -> Any:
        """The field's value (None stays None), or a PydanticCustomError invalid_field."""
        if raw is None:
            return None
        value: int | None = None
        if isinstance(raw, int) and not isinstance(raw, bool):
            value = raw
        elif isinstance(raw, float) and raw.is_integer():
            value = int(raw)
        if value is None or not self.minimum <= value <= self.maximum:
            raise PydanticCustomError(
                "invalid_field",
                "must be a whole number from {minimum} to {maximum}",
                {"minimum": self.minimum, "maximum": self.maximum},
            )
        return value

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        """Run `parse` in place of pydantic's own integer parsing."""
        return core_schema.no_info_before_validator_function(self.parse, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """An integer within the bounds, or null when the field takes it."""
        kind: str | list[str] = ["integer", "null"] if self.nullable else "integer"
        return {"type": kind, "minimum": self.minimum, "maximum": self.maximum}


def file_status(raw: Any) -> Any:
    """A status parameter that names a FileStatus, or a PydanticCustomError."""
    if raw is None or raw in FileStatus._value2member_map_:
        return raw
    raise PydanticCustomError(
        "invalid_parameter",
        "must be one of {allowed}",
        {"allowed": ", ".join(s.value for s in FileStatus)},
    )


# ---- folders, names and places (requests) ----------------------------------------------

ROOT_ID = "root"
# What a file or folder name may not hold (app/files/names.py checked_name): path
# separators, and control, format and surrogate characters.
REFUSED_CODES = [
    code for code in range(0xD800) if unicodedata.category(chr(code)) in {"Cc", "Cf"}
] + [code for code in range(0xE000, 0x10000) if unicodedata.category(chr(code)) == "Cf"]
# The Basic Multilingual Plane's, surrogates aside: the tools that read the document take
# no more in a pattern. The few format characters past it, and lone surrogates, are refused
# all the same (400 `invalid_name`).
REFUSED_IN_NAMES = "/\\\\" + character_ranges(REFUSED_CODES)
NAME_EDGE = f"[^{SPACE}{REFUSED_IN_NAMES}]"
NAME_EDGE_NO_DOT = f"[^{SPACE}{REFUSED_IN_NAMES}.]"
# Trimmed: one character, two (not `..`), or more; without lookaheads, which not every
# JSON Schema tool reads.
NAME_PATTERN = (
    f"^[{SPACE}]*(?:{NAME_EDGE_NO_DOT}|{NAME_EDGE_NO_DOT}{NAME_EDGE}|{NAME_EDGE}{NAME_EDGE_NO_DOT}"
    f"|{NAME_EDGE}[^{REFUSED_IN_NAMES}]{{1,253}}{NAME_EDGE})[{SPACE}]*$"
)
# A name as sent: app/files/names.py checked_name holds it to the rules (400 `invalid_name`),
# of which the one on bytes of UTF-8, and the compared form's length, no pattern states.
EntryName = Annotated[
    str,
    Field(
        json_schema_extra={"pattern": NAME_PATTERN},
        description="At most 255 characters once trimmed, and 255 bytes of UTF-8; no `/`, "
        "`\\`, control or format characters; not `.` or `..`. Unique in its folder among "
        "files and folders, compared NFKC case-folded (else 409 `name_taken`).",
    ),
]
# A folder named in input: `root` (the top level) or a folder's id; anything else is a
# folder that does not exist (404), as a malformed id in a URL is.
PlaceRef = Annotated[
    str,
    Field(description="`root` (the top level) or a folder's id; anything else is 404."),
]


# The longest `q` a listing takes, in characters (a name is at most 255 bytes).
MAX_SEARCH_LENGTH = 255


def one_of(kind: type[StrEnum]) -> Callable[[Any], Any]:
    """A validator of a parameter naming one of an enumeration's values (400
    `invalid_parameter` otherwise)."""

    def check(raw: Any) -> Any:
        if raw in kind._value2member_map_:
            return raw
        raise PydanticCustomError(
            "invalid_parameter",
            "must be one of {allowed}",
            {"allowed": ", ".join(member.value for member in kind)},
        )

    return check


def search_text(raw: Any) -> Any:
    """A search text: any characters a name may hold, at most MAX_SEARCH_LENGTH."""
    if raw is None:
        return raw
    if not isinstance(raw, str) or not is_encodable(raw) or has_control_characters(raw):
        raise PydanticCustomError("invalid_parameter", "must be text without control characters")
    if len(raw) > MAX_SEARCH_LENGTH:
        raise PydanticCustomError(
            "invalid_parameter",
            "must be at most {max_length} characters",
            {"max_length": MAX_SEARCH_LENGTH},
        )
    return raw


# ---- requests -------------------------------------------------------------------------


class RegisterRequest(BaseModel):
    """POST /api/auth/register."""

    # accounts.register checks the address (400 invalid_email) and the password (400
    # weak_password, invalid_password); the schema states those rules too, from the same
    # constants.
    email: Annotated[
        str,
        Text(),
        Field(
            json_schema_extra={"pattern": EMAIL_PATTERN},
            description=f"An address: one @, no spaces, a dot in the domain, at most "
            f"{MAX_EMAIL_LENGTH} characters once trimmed; compared case-insensitively.",
        ),
    ]
    password: Annotated[
        str,
        Text(trim=False, allow_control=True),
        Field(
            json_schema_extra={
                "minLength": MIN_PASSWORD_LENGTH,
                "maxLength": MAX_PASSWORD_BYTES,
                "format": "password",
            },
            description=f"{MIN_PASSWORD_LENGTH} characters at least, {MAX_PASSWORD_BYTES} "
            "bytes of UTF-8 at most, and not one of the 10,000 most common passwords "
            "(compared case-insensitively); any text.",
        ),
    ]
    organization_name: Annotated[
        str,
        Text(max_length=MAX_ORG_NAME_LENGTH),
        Field(
            description=f"At most {MAX_ORG_NAME_LENGTH} characters once trimmed, and "
            f"{MAX_NAME_KEY_LENGTH} once NFKC case-folded; compared in that form. Creates "
            "the organization when new; joining an existing one needs `invite_code`.",
        ),
    ]
    invite_code: Annotated[
        str | None,
        Text(max_length=MAX_INVITE_CODE_LENGTH, optional=True),
        Field(description="From the organization's admin; blank counts as absent."),
    ] = None


class LoginRequest(BaseModel):
    """POST /api/auth/login."""

    email: Annotated[str, Text(max_length=MAX_LOGIN_FIELD_LENGTH)]
    password: Annotated[
        str, Text(max_length=MAX_LOGIN_FIELD_LENGTH, trim=False, allow_control=True)
    ]


def choice_of(kind: type[StrEnum]) -> Callable[[Any], Any]:
    """A validator of a body field naming one of an enumeration's values (400
    `invalid_field` otherwise)."""

    def check(raw: Any) -> Any:
        if isinstance(raw, str) and raw in kind._value2member_map_:
            return raw
        raise PydanticCustomError(
            "invalid_field",
            "must be one of {allowed}",
            {"allowed": ", ".join(member.value for member in kind)},
        )

    return check


# A new password, as every way of setting one reads it; accounts.validate_password then
# refuses a weak one (400 weak_password) or a long one (400 invalid_password).
NewPassword = Annotated[
    str,
    Text(trim=False, allow_control=True),
    Field(
        json_schema_extra={
            "minLength": MIN_PASSWORD_LENGTH,
            "maxLength": MAX_PASSWORD_BYTES,
            "format": "password",
        },
        description=f"{MIN_PASSWORD_LENGTH} characters at least, {MAX_PASSWORD_BYTES} bytes of "
        "UTF-8 at most, and not one of the 10,000 most common passwords (compared "
        "case-insensitively); any text.",
    ),
]


class TokenRequest(BaseModel):
    """POST /api/tokens."""

    name: Annotated[str, Text(max_length=MAX_TOKEN_NAME_LENGTH)]
    access: Annotated[
        TokenAccess,
        BeforeValidator(choice_of(TokenAccess)),
        Field(
            description="`read`: list, read and download only (a change of data is 403 "
            "`insufficient_scope`); `write`: everything the user may do."
        ),
    ] = TokenAccess.WRITE
    expires_in: Annotated[
        int | None,
        JsonInteger(tokens_service.MIN_EXPIRES_IN, tokens_service.MAX_EXPIRES_IN, nullable=True),
        Field(description="Seconds the token works for; absent or null: until revoked."),
    ] = None


class PasswordChangeRequest(BaseModel):
    """POST /api/auth/password."""

    current_password: Annotated[
        str, Text(max_length=MAX_LOGIN_FIELD_LENGTH, trim=False, allow_control=True)
    ]
    new_password: NewPassword


class RoleChangeRequest(BaseModel):
    """PATCH /api/org/users/<id>."""

    role: Annotated[
        Role,
        BeforeValidator(choice_of(Role)),
        Field(description="`admin` or `member`."),
    ]


class InviteRequest(BaseModel):
    """POST /api/org/invites; an empty body (or none) takes every default."""

    role: Annotated[
        Role,
        BeforeValidator(choice_of(Role)),
        Field(description="The role the invitee joins with."),
    ] = Role.MEMBER
    expires_in: Annotated[
        int | None,
        JsonInteger(
            accounts_service.MIN_INVITE_EXPIRES_IN,
            accounts_service.MAX_INVITE_EXPIRES_IN,
            nullable=True,
        ),
        Field(description="Seconds the invite works for; absent or null: INVITE_TTL_HOURS."),
    ] = None


class JoinRequest(BaseModel):
    """The form of an invite link's page (`/join/<code>`): the organization is the invite's."""

    email: Annotated[str, Text()]
    password: NewPassword


class PasswordSetRequest(BaseModel):
    """The form of a reset link's page (`/reset/<code>`)."""

    password: NewPassword


class ShareLinkRequest(BaseModel):
    """POST /api/files/<file_id>/links; an empty body takes every default."""

    expires_in: Annotated[
        int,
        JsonInteger(links_service.MIN_EXPIRES_IN, links_service.MAX_EXPIRES_IN),
        Field(description="Seconds the link works for; 7 days when absent."),
    ] = links_service.DEFAULT_EXPIRES_IN
    max_downloads: Annotated[
        int | None,
        JsonInteger(1, MAX_ID, nullable=True),
        Field(description="Downloads the link allows; no limit when absent or null."),
    ] = None


class FileRequestRequest(BaseModel):
    """POST /api/folders/<folder_id>/requests; an empty body takes every default."""

    expires_in: Annotated[
        int,
        JsonInteger(file_requests_use.MIN_EXPIRES_IN, file_requests_use.MAX_EXPIRES_IN),
        Field(description="Seconds the link works for; 7 days when absent."),
    ] = file_requests_use.DEFAULT_EXPIRES_IN
    max_files: Annotated[
        int | None,
        JsonInteger(1, file_requests_use.MAX_FILES, nullable=True),
        Field(description="Files the link takes; no limit when absent or null."),
    ] = None
    message: Annotated[
        str | None,
        Text(file_requests_use.MAX_MESSAGE_LENGTH, optional=True),
        Field(description="Shown to whoever opens the link."),
    ] = None


# ---- archives (zip downloads) ---------------------------------------------------------


class ArchiveRequest(BaseModel):
    """POST /api/files/archive: the files and folders to download as one zip."""

    file_ids: Annotated[
        list[Annotated[str, Text(max_length=36)]],
        Field(
            max_length=MAX_SELECTION,
            description="Files of the organization, at the top of the zip (only ready ones "
            "are put in).",
        ),
    ] = []
    folder_ids: Annotated[
        list[Annotated[str, Text(max_length=36)]],
        Field(
            max_length=MAX_SELECTION,
            description="Folders of the organization, each in the zip with every ready file "
            "below it.",
        ),
    ] = []


class WebhookRequest(BaseModel):
    """POST /api/org/webhooks."""

    url: Annotated[
        str,
        Text(max_length=webhooks_service.MAX_URL_LENGTH),
        Field(
            json_schema_extra={"pattern": "^[Hh][Tt][Tt][Pp][Ss]?://[^\\s]+$", "format": "uri"},
            description="An http:// or https:// URL whose host is and resolves only to public "
            "addresses (else 400 `url_not_allowed`).",
        ),
    ]
    events: Annotated[
        list[EventType],
        Field(min_length=1, max_length=10, description="The events to send; repeats count once."),
    ]


class FileListQuery(BaseModel):
    """GET /api/files: the query string; a parameter sent empty (`?name=`) takes its default."""

    page: Annotated[
        int,
        WholeNumber(1, MAX_PAGE),
        Field(description="Page number; ignored when `cursor` is given."),
    ] = 1
    limit: Annotated[int, WholeNumber(1, MAX_PAGE_SIZE), Field(description="Files per page.")] = (
        DEFAULT_PAGE_SIZE
    )
    status: Annotated[
        FileStatus | SkipJsonSchema[None],
        BeforeValidator(file_status),
        Field(description="Only files in this status."),
    ] = None
    cursor: Annotated[
        str | SkipJsonSchema[None],
        Field(description="The `next_cursor` of the previous page."),
    ] = None
    # ---- folders, sorts and search (issue 28) ----
    folder_id: Annotated[
        str | SkipJsonSchema[None],
        Field(
            description="Only this folder's own files (`root`: the top level); with `q`, the "
            "files below it at every depth. Another organization's folder is 404."
        ),
    ] = None
    q: Annotated[
        str | SkipJsonSchema[None],
        BeforeValidator(search_text),
        Field(
            description="Names containing this text, compared as names are (NFKC, "
            "case-folded; accents as typed; `%` and `_` are plain characters). Each match "
            "carries its `path`. No control characters (no name holds one).",
            max_length=MAX_SEARCH_LENGTH,
            json_schema_extra={"pattern": f"^{INNER}*$"},
        ),
    ] = None
    sort: Annotated[
        Sort,
        BeforeValidator(one_of(Sort)),
        Field(description="The order's key; ties by id."),
    ] = Sort.UPLOADED_AT
    order: Annotated[
        Order,
        BeforeValidator(one_of(Order)),
        Field(description="Which way the order runs."),
    ] = Order.DESC


class ActivityFormat(StrEnum):
    """How the activity record is answered."""

    JSON = "json"
    CSV = "csv"


def activity_type(raw: Any) -> Any:
    """A `type` parameter naming an event type (400 `invalid_parameter` otherwise)."""
    if raw is None or raw in activity_service.EVENT_TYPES:
        return raw
    raise PydanticCustomError("invalid_parameter", "must be an event type listed in docs/API.md")


class ActivityQuery(BaseModel):
    """GET /api/org/activity and GET /api/files/<id>/activity: the query string."""

    limit: Annotated[
        int,
        WholeNumber(1, activity_service.MAX_LIMIT),
        Field(description="Events per page."),
    ] = activity_service.DEFAULT_LIMIT
    cursor: Annotated[
        str | SkipJsonSchema[None],
        Field(description="The `next_cursor` of the previous page.", max_length=200),
    ] = None
    type: Annotated[
        str | SkipJsonSchema[None],
        BeforeValidator(activity_type),
        Field(
            description="Only events of this type.",
            json_schema_extra={"enum": list(activity_service.EVENT_TYPES)},
        ),
    ] = None
    actor_id: Annotated[
        int | SkipJsonSchema[None],
        WholeNumber(1, MAX_ID),
        Field(description="Only what this user did (by session or by their tokens)."),
    ] = None
    file_id: Annotated[
        UUID | SkipJsonSchema[None],
        Field(description="Only events about this file."),
    ] = None
    format: Annotated[
        ActivityFormat,
        BeforeValidator(one_of(ActivityFormat)),
        Field(description="`csv`: every matching event as CSV, newest first."),
    ] = ActivityFormat.JSON


# What on_conflict takes.
ON_CONFLICT_CHOICES = ("rename", "fail", "replace")


def on_conflict_value(raw: Any) -> Any:
    """An on_conflict that names a choice, or a PydanticCustomError."""
    if raw in ON_CONFLICT_CHOICES:
        return raw
    raise PydanticCustomError("invalid_field", "must be rename, fail or replace")


class UploadOptions(BaseModel):
    """Where an upload goes and what its name does when taken there (multipart form fields,
    or tus Upload-Metadata keys); a field sent empty counts as absent."""

    # A form field is text or absent, never null: the document says so.
    folder_id: Annotated[
        PlaceRef | SkipJsonSchema[None],
        Field(description="The folder to store it in; absent or `root`: the top level."),
    ] = None
    on_conflict: Annotated[
        str,
        BeforeValidator(on_conflict_value),
        Field(
            json_schema_extra={"enum": list(ON_CONFLICT_CHOICES)},
            description="When the folder has the name: `rename` (`report.pdf` becomes "
            "`report (2).pdf`), `fail` (409 `name_taken`, nothing stored), or `replace` (a "
            "file of that name gets the upload as a new version, under its id; a folder of "
            "that name: 409 `name_taken`).",
        ),
    ] = "rename"


class UploadRequest(UploadOptions):
    """A cookie session may send its CSRF token as the form field `csrf_token` instead of the
    X-CSRF-Token header; other fields are ignored."""

    # The upload is streamed to storage as it arrives (app/multipart.py), not read
    # through this model; the model gives the multipart body its schema.
    file: Annotated[
        bytes,
        WithJsonSchema(
            {
                "type": "string",
                "format": "binary",
                "minLength": 1,
                "description": "The file, not empty; its part's `filename` is the name shown "
                "later.",
            }
        ),
    ]


class FolderRequest(BaseModel):
    """POST /api/folders."""

    name: EntryName
    parent_id: Annotated[
        PlaceRef | None,
        Field(description="The folder to create it in; absent, null or `root`: the top level."),
    ] = None


class FolderChangeRequest(BaseModel):
    """PATCH /api/folders/<id>: a new name, a new parent, or both; absent or null keeps it."""

    name: EntryName | None = None
    parent_id: Annotated[
        PlaceRef | None,
        Field(description="The folder to move it into; `root`: the top level."),
    ] = None


class FileChangeRequest(BaseModel):
    """PATCH /api/files/<id>: a new name, a new folder, or both; absent or null keeps it."""

    filename: EntryName | None = None
    folder_id: Annotated[
        PlaceRef | None,
        Field(description="The folder to move it into; `root`: the top level."),
    ] = None


class OrganizationChangeRequest(BaseModel):
    """PATCH /api/org: the organization's retention settings; absent or null keeps one."""

    trash_retention_days: Annotated[
        int | None,
        JsonInteger(0, MAX_TRASH_RETENTION_DAYS, nullable=True),
        Field(description="Days a deleted item stays in the trash; 0: purged at the next sweep."),
    ] = None
    versions_kept: Annotated[
        int | None,
        JsonInteger(1, MAX_VERSIONS_KEPT, nullable=True),
        Field(description="Versions of each file kept, the newest."),
    ] = None


class FolderListQuery(BaseModel):
    """GET /api/folders: the query string."""

    parent_id: Annotated[
        PlaceRef,
        Field(description="Whose folders: `root` (the default) or a folder id."),
    ] = ROOT_ID


class TrashListQuery(BaseModel):
    """GET /api/trash: the query string; a parameter sent empty takes its default."""

    limit: Annotated[int, WholeNumber(1, MAX_PAGE_SIZE), Field(description="Items per page.")] = 50
    cursor: Annotated[
        str | SkipJsonSchema[None],
        Field(description="The `next_cursor` of the previous page."),
    ] = None


# ---- reading input through the request models -------------------------------------------


class InputRejected(Exception):
    """A request body, query string or form its model refused, with pydantic's errors.

    Only input is wrapped so: a response model that fails is a bug, and answers 500.
    """

    def __init__(self, cause: ValidationError) -> None:
        super().__init__(str(cause))
        self.cause = cause


Model = TypeVar("Model", bound=BaseModel)


def validated(model: type[Model], data: Any) -> Model:
    """The data read by the model, or InputRejected with pydantic's errors."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InputRejected(exc) from None


# ---- responses ------------------------------------------------------------------------

Timestamp = Annotated[
    datetime,
    PlainSerializer(isoformat, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "description": "ISO 8601 in UTC with microseconds and a trailing Z.",
        }
    ),
]
Count = Annotated[int, Field(ge=0)]


class Answer(BaseModel):
    """A response body, built from the row or values a view has."""

    model_config = ConfigDict(from_attributes=True)

    def body(self) -> dict[str, Any]:
        """The JSON object the view answers with."""
        return self.model_dump(mode="json")


class Error(Answer):
    """Every error. Some add `field` (the input at fault)."""

    error: str = Field(description="A human message.")
    code: str = Field(pattern="^[a-z][a-z0-9_]*$")
    field: str | SkipJsonSchema[None] = None


class NotReady(Answer):
    """409 `not_ready`: the file cannot be downloaded yet (or ever, if failed)."""

    error: str
    code: Literal["not_ready"]
    status: Literal[FileStatus.PENDING, FileStatus.PROCESSING, FileStatus.FAILED]


class Identity(Answer):
    """Who registered or logged in, and the session's CSRF token."""

    user_id: int
    email: str
    organization_id: int
    role: Role
    csrf_token: str = Field(min_length=1)


class Me(Answer):
    """The caller."""

    user_id: int
    email: str
    organization_id: int
    organization_name: str
    role: Role


class Success(Answer):
    """The request did what it asked."""

    success: Literal[True]


class CsrfToken(Answer):
    """The CSRF token of the current session."""

    csrf_token: str = Field(min_length=1)


class Organization(Answer):
    """The caller's organization and its storage use."""

    id: int
    name: str
    storage_quota_mb: Count
    used_bytes: Count
    # Held by unfinished resumable uploads: their whole Upload-Length, from creation.
    reserved_bytes: Count
    file_count: Count
    # Parts of used_bytes: the trash (every version of each trashed file), and the versions
    # of other files than the ones they answer with.
    trash_bytes: Count
    versions_bytes: Count
    trash_retention_days: Count
    versions_kept: Count
    created_at: Timestamp


class Invite(Answer):
    """A new invite: its code and link, shown once."""

    id: int
    invite_code: str = Field(min_length=1, description="Shown once.")
    url: str = Field(
        pattern="/join/[A-Za-z0-9_-]{43}$",
        description="The invite's page (absolute: PUBLIC_URL, else the request's host), where "
        "the invitee signs up into the organization without typing its name; shown once.",
    )
    expires_at: Timestamp
    role: Role


class PendingInvite(Answer):
    """An invite not used yet nor expired, without its code."""

    id: int
    role: Role
    created_at: Timestamp
    expires_at: Timestamp
    created_by_email: str | None = Field(
        description="The admin who made it; null when made by the operator or they are gone."
    )


class InviteList(Answer):
    """The organization's pending invites, oldest first."""

    invites: list[PendingInvite]


class IssuedPasswordReset(Answer):
    """A new password reset link, shown once."""

    user_id: int
    url: str = Field(
        pattern="/reset/[A-Za-z0-9_-]{43}$",
        description="The page where the user sets a new password, once, within 24 hours "
        "(absolute: PUBLIC_URL, else the request's host).",
    )
    expires_at: Timestamp


class User(Answer):
    """A user as the admin sees them."""

    id: int
    email: str
    role: Role
    is_active: bool
    created_at: Timestamp


class UserList(Answer):
    """Every user of the organization."""

    users: list[User]


class UserActivation(Answer):
    """A user's new state."""

    id: int
    is_active: bool


class Token(Answer):
    """An API token without its secret."""

    id: int
    name: str
    access: TokenAccess
    created_at: Timestamp
    last_used_at: Timestamp | None
    expires_at: Timestamp | None = Field(description="Null: works until revoked.")


class IssuedToken(Token):
    """A new API token with its secret."""

    token: str = Field(
        pattern=f"^{TOKEN_PREFIX}[A-Za-z0-9_-]{{43}}$",
        description="The secret, shown this once; send it as `Authorization: Bearer <token>`.",
    )


class TokenList(Answer):
    """The caller's tokens."""

    tokens: list[Token]


class Upload(Answer):
    """A file (or a new version of one) stored and queued for validation."""

    file_id: UUID
    filename: str = Field(min_length=1)
    size: int = Field(ge=1)
    status: Literal[FileStatus.PENDING] = Field(
        description="The upload's: a new version is `pending` while the file answers with "
        "the version it had."
    )
    version: int = Field(
        ge=1,
        description="1 for a new file; with `on_conflict=replace` onto an existing file, the "
        "new version's number.",
    )


class FileSummary(Answer):
    """A file as listed."""

    id: UUID
    filename: str
    size: Count
    mime_type: str | None
    status: FileStatus
    uploaded_at: Timestamp
    uploaded_by_email: str | None
    folder_id: str = Field(
        description="The folder it is in: a folder id, or `root` for the top level."
    )
    uploaded_via_request: int | None = Field(
        description="The upload-only link the file was sent through (then "
        "`uploaded_by_email` is null); null for a member's upload or once the link is revoked."
    )
    preview: bool = Field(
        description="Whether `GET /api/files/{file_id}/thumbnail` has an image of the content "
        "the file answers with (ready images and PDFs, once their previews are made)."
    )


# ---- a listing's files and their paths (issue 28) ----
class ListedFile(FileSummary):
    """A file as listed; a search's matches carry their path."""

    path: str | SkipJsonSchema[None] = Field(
        None,
        description="Only with `q`: the file's path, `/A/B/name` (`/name` at the top level).",
    )

    @model_serializer(mode="wrap")
    def _without_absent_path(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Left out unless searching, so a listing without `q` answers as it always did."""
        data: dict[str, Any] = handler(self)
        if data.get("path") is None:
            data.pop("path", None)
        return data


class FileList(Answer):
    """One page of the organization's files."""

    files: list[ListedFile]
    total: Count | None = Field(
        description="The files the listing holds, from kept counters; null with `folder_id` "
        "or `q` (counting a folder or a search's matches would read every row)."
    )
    page: int = Field(ge=1)
    limit: int = Field(ge=1, le=MAX_PAGE_SIZE)
    pages: Count | None = Field(description="Pages of `limit` files; null when `total` is.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last."
    )


class FileDetails(FileSummary):
    """Everything known about one file."""

    sha256: Annotated[str, Field(pattern="^[0-9a-f]{64}$")] | None
    error_message: str | None
    processed_at: Timestamp | None
    path: str = Field(description="`/A/B/name`: its folders from the top, and its name.")
    version: int = Field(
        ge=1, description="The number of the version the file answers with (its newest ready)."
    )


class Version(Answer):
    """One version of a file."""

    version: int = Field(ge=1)
    size: Count
    sha256: Annotated[str, Field(pattern="^[0-9a-f]{64}$")] | None
    status: FileStatus
    uploaded_at: Timestamp
    uploaded_by_email: str | None
    current: bool = Field(description="Whether the file answers with this version.")


class VersionList(Answer):
    """A file's versions, newest first."""

    versions: list[Version]


class IssuedShareLink(Answer):
    """A new share link; `url` holds its secret and is shown this once."""

    id: int
    url: str = Field(
        pattern="/s/[A-Za-z0-9_-]{43}$",
        description="Absolute (PUBLIC_URL, else the request's host); anyone holding it can "
        "download the file.",
    )
    expires_at: Timestamp
    max_downloads: int | None
    path: str = Field(description="The file's path (`/A/B/name`) as the link is made.")


class ShareLink(Answer):
    """A usable share link, without its secret."""

    id: int
    created_at: Timestamp
    expires_at: Timestamp
    max_downloads: int | None
    downloads: Count
    path: str = Field(description="The file's path (`/A/B/name`) now.")


class UnfinishedUpload(Answer):
    """A resumable upload still receiving bytes."""

    id: UUID = Field(description="Its URL is /api/uploads/<id>; the file it becomes has this id.")
    filename: str
    uploader: str | None = Field(description="The uploader's email; null if they were removed.")
    offset: Count = Field(description="The bytes received so far.")
    length: int = Field(ge=1, description="Its Upload-Length.")
    expires_at: Timestamp = Field(
        description="When it expires unless more bytes arrive (RESUMABLE_EXPIRY_HOURS after "
        "the last PATCH that wrote some)."
    )
    created_at: Timestamp


class UnfinishedUploadList(Answer):
    """The unfinished uploads the caller may see, newest first."""

    uploads: list[UnfinishedUpload]


class IssuedFileRequest(Answer):
    """A new upload-only link; `url` holds its secret and is shown this once."""

    id: int
    url: str = Field(description="`/r/<secret>` (absolute): the page where anyone sends files.")
    expires_at: Timestamp
    max_files: int | None


class FileRequestInfo(Answer):
    """An upload-only link, without its secret."""

    id: int
    folder_id: str = Field(description="The folder it fills: a folder id, or `root`.")
    path: str = Field(description="The folder's path now (`/A/B`, `/` for the top level).")
    created_by_email: str | None
    message: str | None
    created_at: Timestamp
    expires_at: Timestamp
    max_files: int | None
    files_received: Count
    usable: bool = Field(description="Not expired and not used up.")


class FileRequestList(Answer):
    """Upload-only links, newest first."""

    requests: list[FileRequestInfo]


class ShareLinkList(Answer):
    """A file's usable share links."""

    links: list[ShareLink]


class Webhook(Answer):
    """An endpoint, without its secret."""

    id: int
    url: str
    events: list[EventType]
    created_at: Timestamp


class IssuedWebhook(Webhook):
    """A new endpoint with its signing secret."""

    secret: str = Field(
        pattern=f"^{webhooks_service.SECRET_PREFIX}[A-Za-z0-9_-]{{43}}$",
        description="Signs every delivery (Coffer-Signature); shown this once.",
    )


class WebhookList(Answer):
    """The organization's endpoints."""

    webhooks: list[Webhook]


class Delivery(Answer):
    """One delivery attempt."""

    event_id: UUID
    type: EventType
    attempt: int = Field(ge=1, description="1 for the first attempt, then one more per retry.")
    outcome: Literal["succeeded", "retrying", "failed"] = Field(
        description="`retrying`: another attempt is due at `next_attempt_at`; `failed`: no "
        "retry is left."
    )
    status_code: int | None = Field(description="The receiver's status; null if none came.")
    error: str | None = Field(description="Why no answer came (timeout, connection, refusal).")
    duration_ms: Count
    delivered_at: Timestamp = Field(description="When the attempt was made.")
    next_attempt_at: Timestamp | None


class DeliveryList(Answer):
    """An endpoint's recent attempts, newest first."""

    deliveries: list[Delivery]


class WebhookEventData(Answer):
    """What an event is about."""

    file: FileDetails = Field(
        description="As GET /api/files/<id> gives it; for file.deleted, as it was just "
        "before the deletion."
    )


class WebhookEvent(Answer):
    """The body of a webhook delivery, signed by Coffer-Signature."""

    id: UUID = Field(description="Also in Coffer-Event-Id; the same on every retry.")
    type: EventType
    created_at: Timestamp
    organization_id: int
    data: WebhookEventData


# ---- folders (answers) -------------------------------------------------------------------


class FolderEntry(Answer):
    """A folder as listed in its parent."""

    id: UUID
    name: str
    parent_id: str = Field(description="Its parent's id, or `root` for the top level.")
    created_at: Timestamp


class Folder(FolderEntry):
    """A folder with its path."""

    path: str = Field(description="`/A/B`: its folders from the top, itself last.")


class Crumb(Answer):
    """One folder on the way down to another."""

    id: UUID
    name: str


class FolderDetails(Folder):
    """A folder with its path and breadcrumbs."""

    breadcrumbs: list[Crumb] = Field(description="From the top level down, the folder last.")


class FolderList(Answer):
    """The folders directly in one folder, by name (compared NFKC case-folded)."""

    folders: list[FolderEntry]


# ---- the trash (answers) -----------------------------------------------------------------


class TrashItem(Answer):
    """A file or folder in the trash (a folder's contents are not listed separately)."""

    id: UUID = Field(description="The file's or folder's own id.")
    kind: Literal["file", "folder"]
    name: str
    path: str = Field(description="Where it was: `/A/B/name`.")
    size: Count = Field(description="A folder's: the bytes of the files deleted with it.")
    deleted_at: Timestamp
    deleted_by_email: str | None
    purge_at: Timestamp = Field(
        description="When the sweep removes it for good (`deleted_at` plus the "
        "organization's `trash_retention_days`)."
    )


class TrashList(Answer):
    """One page of the trash, newest first."""

    items: list[TrashItem]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last."
    )


class RestoredItem(Answer):
    """An item back out of the trash."""

    id: UUID
    kind: Literal["file", "folder"]
    path: str = Field(
        description="Where it now is: where it was, or the top level when that folder is "
        "gone; its name numbered when taken meanwhile."
    )


class Health(Answer):
    """Liveness."""

    status: Literal["ok"]


class ReadinessChecks(Answer):
    """Each dependency: `ok` or the error."""

    database: str
    redis: str
    storage: str


class Readiness(Answer):
    """Readiness, with each check."""

    status: Literal["ready", "unavailable"]
    checks: ReadinessChecks


class OpenAPIDocument(Answer):
    """An OpenAPI document."""

    model_config = ConfigDict(extra="allow")

    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]


# ---- the activity record --------------------------------------------------------------


class ActivityActor(Answer):
    """Who acted."""

    kind: Literal["user", "token", "link", "request", "system"]
    id: int | None = Field(
        description="The user's, token's, share link's or upload-only link's id; null for the "
        "system."
    )
    email: str | None = Field(description="The user (a token's owner); null for links.")


class ActivityTarget(Answer):
    """What the event is about, named as it was then."""

    kind: str | None
    id: str | None = Field(description="The target's id, as text (files and folders: UUIDs).")
    name: str | None


class ActivityEventOut(Answer):
    """One event of the activity record."""

    id: int
    type: str
    at: Timestamp
    actor: ActivityActor
    ip: str | None
    target: ActivityTarget
    detail: str | None = Field(
        description="What else the event says: for `file.failed`, why the file failed."
    )


class ActivityList(Answer):
    """One page of events, newest first."""

    events: list[ActivityEventOut]
    next_cursor: str | None


REQUESTS: tuple[type[BaseModel], ...] = (
    FileRequestRequest,
    RegisterRequest,
    LoginRequest,
    TokenRequest,
    PasswordChangeRequest,
    RoleChangeRequest,
    InviteRequest,
    UploadRequest,
    ShareLinkRequest,
    WebhookRequest,
    # folders, names and places
    FolderRequest,
    FolderChangeRequest,
    FileChangeRequest,
    ArchiveRequest,
    # the organization's settings
    OrganizationChangeRequest,
)
RESPONSES: tuple[type[BaseModel], ...] = (
    IssuedFileRequest,
    FileRequestInfo,
    FileRequestList,
    Error,
    NotReady,
    Identity,
    Me,
    Success,
    CsrfToken,
    Organization,
    Invite,
    PendingInvite,
    InviteList,
    IssuedPasswordReset,
    User,
    UserList,
    UserActivation,
    Token,
    IssuedToken,
    TokenList,
    Upload,
    FileSummary,
    ListedFile,
    FileList,
    FileDetails,
    IssuedShareLink,
    ShareLink,
    ShareLinkList,
    UnfinishedUpload,
    UnfinishedUploadList,
    Webhook,
    IssuedWebhook,
    WebhookList,
    Delivery,
    DeliveryList,
    WebhookEvent,
    TrashItem,
    TrashList,
    RestoredItem,
    Health,
    Readiness,
    OpenAPIDocument,
    # folders
    FolderEntry,
    Folder,
    Crumb,
    FolderDetails,
    FolderList,
    # versions
    Version,
    VersionList,
    # the activity record
    ActivityActor,
    ActivityTarget,
    ActivityEventOut,
    ActivityList,
)
