"""Each source's payload, decoded and flattened into mapping ``Item``s. Pure: bytes in, items
(or an ``ApiError`` naming what is wrong) out; nothing here touches the database or network."""

from __future__ import annotations

import csv
import email
import email.policy
import html.parser
import io
import re
import urllib.parse
from email.utils import parseaddr
from typing import Any

import msgspec

from exchange.channels.mapping import Item
from exchange.errors import ApiError, FieldProblem

FORM_MAX_BYTES = 16 * 1024
FORM_MAX_FIELDS = 200
WEBHOOK_MAX_BYTES = 64 * 1024
CSV_MAX_BYTES = 5 * 1024 * 1024
CSV_MAX_ROWS = 10_000
EMAIL_MAX_BYTES = 256 * 1024
EMAIL_MAX_LINES = 500
EMAIL_KEY_MAX_CHARS = 100
VALUE_MAX_CHARS = 10_000


def malformed(message: str, path: str, reason: str, status: int = 422) -> ApiError:
    return ApiError(status, "malformed_payload", message, fields=[FieldProblem(path, reason)])


# --- HTML form ---------------------------------------------------------------------------------


def form_items(body: bytes) -> list[Item]:
    try:
        text = body.decode("utf-8")
        pairs = urllib.parse.parse_qsl(
            text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=FORM_MAX_FIELDS
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise malformed("not a urlencoded form", "body", str(exc)[:200]) from None
    return [Item(key, value, f"form.{key}") for key, value in pairs]


# --- Google Ads lead form webhook --------------------------------------------------------------


class GoogleColumn(msgspec.Struct, kw_only=True):
    column_id: str | None = None
    column_name: str | None = None
    string_value: str | None = None


class GoogleLead(msgspec.Struct, kw_only=True):
    """Google Ads lead form extension webhook body. Unknown keys are ignored: Google adds some."""

    lead_id: str
    user_column_data: list[GoogleColumn]
    api_version: str | None = None
    form_id: int | str | None = None
    campaign_id: int | str | None = None
    google_key: str | None = None
    is_test: bool = False
    gcl_id: str | None = None
    adgroup_id: int | str | None = None
    creative_id: int | str | None = None


def google_lead(body: bytes) -> GoogleLead:
    try:
        return msgspec.json.decode(body, type=GoogleLead)
    except msgspec.ValidationError as exc:
        raise malformed("not a Google Ads lead", _msgspec_path(exc), str(exc)) from None
    except msgspec.DecodeError as exc:
        raise malformed("body is not JSON", "body", str(exc)) from None


def google_items(lead: GoogleLead) -> list[Item]:
    items = []
    for column in lead.user_column_data:
        key = column.column_id or column.column_name
        if key:
            items.append(Item(key, column.string_value or "", f"user_column_data[{key}]"))
    return items


# --- Meta lead ads -----------------------------------------------------------------------------


class MetaChange(msgspec.Struct, kw_only=True):
    field: str
    value: dict[str, Any]


class MetaEntry(msgspec.Struct, kw_only=True):
    id: str | int
    time: int | None = None
    changes: list[MetaChange] = []


class MetaNotification(msgspec.Struct, kw_only=True):
    object: str
    entry: list[MetaEntry]


class Leadgen(msgspec.Struct, kw_only=True):
    leadgen_id: str
    page_id: str | None = None
    form_id: str | None = None
    ad_id: str | None = None
    adgroup_id: str | None = None
    created_time: int | None = None


def meta_leadgens(body: bytes) -> list[Leadgen]:
    """The leads a page's change notification tells of (other fields are not leads)."""
    try:
        note = msgspec.json.decode(body, type=MetaNotification)
    except msgspec.ValidationError as exc:
        raise malformed("not a Meta change notification", _msgspec_path(exc), str(exc)) from None
    except msgspec.DecodeError as exc:
        raise malformed("body is not JSON", "body", str(exc)) from None
    if note.object != "page":
        raise malformed("not a page notification", "object", "expected 'page'")
    out = []
    for i, entry in enumerate(note.entry):
        for j, change in enumerate(entry.changes):
            if change.field != "leadgen":
                continue
            value = {
                k: str(v) if isinstance(v, int) and k != "created_time" else v
                for k, v in change.value.items()
            }
            try:
                out.append(msgspec.convert(value, Leadgen))
            except msgspec.ValidationError as exc:
                raise malformed(
                    "bad leadgen change", f"entry[{i}].changes[{j}].value", str(exc)
                ) from None
    return out


class MetaField(msgspec.Struct, kw_only=True):
    name: str
    values: list[str] = []


class MetaLead(msgspec.Struct, kw_only=True):
    """The Graph API's answer for ``GET /{leadgen_id}``."""

    id: str | None = None
    created_time: str | None = None
    field_data: list[MetaField]
    is_organic: bool | None = None


def meta_items(fetched: dict[str, Any]) -> list[Item]:
    try:
        lead = msgspec.convert(fetched, MetaLead)
    except msgspec.ValidationError as exc:
        raise malformed(
            "the platform's lead has no field_data", _msgspec_path(exc), str(exc)
        ) from None
    return [
        Item(f.name, f.values[0] if f.values else "", f"field_data[{f.name}]")
        for f in lead.field_data
    ]


# --- CSV ---------------------------------------------------------------------------------------


class CsvRow(msgspec.Struct, frozen=True):
    line: int
    items: list[Item]
    extra: bool  # more values than columns


def csv_rows(body: bytes) -> list[CsvRow]:
    """The file's rows (after the header). The whole file is refused when it is not UTF-8, has
    no header or is too big: a per-row report of a file misread as a whole would be noise."""
    if len(body) > CSV_MAX_BYTES:
        raise malformed("file too large", "body", f"at most {CSV_MAX_BYTES} bytes", status=413)
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise malformed(
            "file is not UTF-8 text", "body", f"bad byte at offset {exc.start}"
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if not header or not any(h.strip() for h in header):
            raise malformed(
                "the file has no header row", "header", "the first line names the columns"
            )
        names = [h.strip() for h in header]
        if len({n.casefold() for n in names}) != len(names):
            raise malformed("a column is named twice", "header", "column names must differ")
        rows = []
        for values in reader:
            if not any(v.strip() for v in values):
                continue  # blank lines
            if len(rows) >= CSV_MAX_ROWS:
                raise malformed("too many rows", "body", f"at most {CSV_MAX_ROWS} rows a file")
            items = [
                Item(n, v[:VALUE_MAX_CHARS], n) for n, v in zip(names, values, strict=False) if n
            ]
            rows.append(CsvRow(reader.line_num, items, len(values) > len(names)))
    except csv.Error as exc:
        raise malformed("not a CSV file", f"line {reader.line_num}", str(exc)) from None
    if not rows:
        raise malformed("the file has no rows", "body", "at least one row after the header")
    return rows


# --- Inbound email -----------------------------------------------------------------------------

_KEY_LINE = re.compile(rf"^\s*([^:\n]{{1,{EMAIL_KEY_MAX_CHARS}}}?)\s*:\s*(.*?)\s*$")


class Mail(msgspec.Struct, frozen=True):
    subject: str | None
    sender: str | None
    items: list[Item]


class _Text(html.parser.HTMLParser):
    """An HTML body as text, a line per block (so "<p>Phone: 1</p><p>Zip: 2</p>" is two)."""

    BLOCKS = frozenset({"p", "br", "div", "tr", "li", "h1", "h2", "h3", "h4", "table"})

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("script", "style"):
            self.skip += 1
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self.skip:
            self.skip -= 1
        if tag in self.BLOCKS or tag in ("td", "th"):
            self.parts.append("\n" if tag not in ("td", "th") else " ")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def html_text(markup: str) -> str:
    parser = _Text()
    parser.feed(markup)
    parser.close()
    return "".join(parser.parts)


def mail(body: bytes) -> Mail:
    """An RFC 822 message: "Key: value" lines of its text part (or its HTML part, stripped)."""
    if len(body) > EMAIL_MAX_BYTES:
        raise malformed("message too large", "body", f"at most {EMAIL_MAX_BYTES} bytes", status=413)
    msg = email.message_from_bytes(body, policy=email.policy.default)
    if msg["From"] is None and msg["Subject"] is None:
        raise malformed("not an RFC 822 message", "headers", "no From or Subject header")
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        raise malformed("the message has no text body", "body", "a text/plain or text/html part")
    try:
        text = part.get_content()
    except (LookupError, UnicodeError) as exc:
        raise malformed("the message body cannot be decoded", "body", str(exc)) from None
    if part.get_content_subtype() == "html":
        text = html_text(text)
    items = []
    for line in text.splitlines()[:EMAIL_MAX_LINES]:
        if (m := _KEY_LINE.match(line)) and m.group(1).strip():
            items.append(
                Item(m.group(1), m.group(2)[:VALUE_MAX_CHARS], f"body.{m.group(1).strip()}")
            )
    if not items:
        raise malformed(
            "no 'Key: value' lines in the message", "body", "one line per field: 'Phone: ...'"
        )
    sender = parseaddr(str(msg["From"] or ""))[1] or None
    return Mail(subject=str(msg["Subject"]) if msg["Subject"] else None, sender=sender, items=items)


def _msgspec_path(exc: msgspec.ValidationError) -> str:
    """msgspec says "... - at `$.user_column_data[0]`": the path, without the ``$.``."""
    m = re.search(r"at `\$\.?([^`]*)`", str(exc))
    return m.group(1) if m and m.group(1) else "body"
