"""The intake adapters' pure parts: the mapping, the payload parsers, Meta's signature."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from exchange.channels import mapping as mappings
from exchange.channels import payloads
from exchange.channels.mapping import Item, Mapping
from exchange.channels.meta import signature_ok
from exchange.errors import ApiError, FieldProblem
from exchange.intake.fields import FieldFormat, FieldSpec

SPECS = [
    FieldSpec(name=n, format=FieldFormat.TEXT)
    for n in ("first_name", "last_name", "phone", "homeowner")
]


def apply(mapping: Mapping, pairs: dict[str, str], sender: str | None = None) -> mappings.Mapped:
    items = [Item(k, v, f"src.{k}") for k, v in pairs.items()]
    return mappings.apply(mapping, items, path_of=lambda k: f"src.{k}", sender=sender)


def test_keys_match_case_insensitively_names_split_and_constants_fill_gaps():
    mapping = Mapping(
        fields={"Phone ": "phone"}, split_name={"FULL_NAME": ["first_name", "last_name"]},
        constants={"homeowner": "yes", "phone": "never used"},
    )  # fmt: skip
    out = apply(mapping, {"phone": "415", "full_name": "Ana Maria Garcia", "submit": "Go"})
    assert out.fields == {
        "phone": "415",
        "first_name": "Ana Maria",
        "last_name": "Garcia",
        "homeowner": "yes",
    }
    assert out.paths["fields.first_name"] == "src.full_name"
    # An empty value counts as absent: the error names the key it should come from.
    out = apply(mapping, {"phone": "  "})
    assert out.fields["phone"] == "never used"  # the constant, as the payload gave none
    assert out.paths["fields.phone"] == "src.Phone "


def test_sender_fills_its_field_only_when_the_body_does_not():
    mapping = Mapping(fields={"Email": "phone"}, sender_field="phone")
    assert apply(mapping, {}, sender="a@example.com").fields == {"phone": "a@example.com"}
    assert apply(mapping, {"Email": "b@example.com"}, sender="a@example.com").fields == {
        "phone": "b@example.com"
    }


def test_check_names_every_unknown_target():
    bad = Mapping(
        fields={"x": "nope"}, constants={"colour": 1}, consent={"t": "tcpa"}, sub_ids={"s": "sub9"}
    )
    paths = [p.path for p in mappings.check(bad, SPECS)]
    assert paths == [
        "mapping.fields.x",
        "mapping.constants.colour",
        "mapping.consent.t",
        "mapping.sub_ids.s",
    ]
    assert mappings.check(Mapping(fields={"a": "phone", "A": "phone"}), SPECS)


def test_rename_keeps_unknown_paths():
    problems = [FieldProblem("fields.phone", "bad"), FieldProblem("fields.zip", "bad")]
    assert mappings.rename(problems, {"fields.phone": "form.tel"}) == [
        FieldProblem("form.tel", "bad"), FieldProblem("fields.zip", "bad")]  # fmt: skip


def test_csv_rows_by_line_and_malformed_files_refused():
    rows = payloads.csv_rows(b'\xef\xbb\xbfA,B\r\n1,"two\nlines"\r\n\r\n3,4,5\r\n')
    assert [(r.line, r.extra) for r in rows] == [(3, False), (5, True)]
    assert rows[0].items == [Item("A", "1", "A"), Item("B", "two\nlines", "B")]
    for body in (b"\xff\xfe", b"", b"A,a\r\n1,2\r\n", b"A,B\r\n"):
        with pytest.raises(ApiError) as exc:
            payloads.csv_rows(body)
        assert exc.value.status == 422


def test_email_reads_key_lines_of_the_text_or_stripped_html_part():
    text = (
        b"From: Ann <ann@example.com>\r\nSubject: Hi\r\n\r\nHello\r\nPhone: 415\r\nZip : 94103\r\n"
    )
    mail = payloads.mail(text)
    assert (mail.sender, mail.subject) == ("ann@example.com", "Hi")
    assert [(i.key, i.value) for i in mail.items] == [("Phone", "415"), ("Zip", "94103")]
    html = b"From: a@b.co\r\nContent-Type: text/html\r\n\r\n<style>p{x:y}</style><p>Phone: 1</p><p>Zip: 2</p>"
    assert [(i.key, i.value) for i in payloads.mail(html).items] == [("Phone", "1"), ("Zip", "2")]
    with pytest.raises(ApiError):
        payloads.mail(b"no headers, no lines")


def test_google_and_meta_payloads():
    lead = payloads.google_lead(b'{"lead_id": "1", "user_column_data": [{"column_id": "EMAIL", "string_value": "e"}],'
                                b' "google_key": "k", "is_test": true, "new_key": 1}')  # fmt: skip
    assert payloads.google_items(lead) == [Item("EMAIL", "e", "user_column_data[EMAIL]")]
    with pytest.raises(ApiError):
        payloads.google_lead(b'{"user_column_data": []}')
    note = b'{"object": "page", "entry": [{"id": 1, "changes": [{"field": "feed", "value": {}},' \
           b' {"field": "leadgen", "value": {"leadgen_id": 42, "page_id": 1}}]}]}'  # fmt: skip
    assert [g.leadgen_id for g in payloads.meta_leadgens(note)] == ["42"]
    items = payloads.meta_items(
        {"field_data": [{"name": "email", "values": ["e"]}, {"name": "x", "values": []}]}
    )
    assert items == [Item("email", "e", "field_data[email]"), Item("x", "", "field_data[x]")]


def test_meta_signature():
    body = b'{"object": "page"}'
    good = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert signature_ok("s3cret", body, good)
    assert not signature_ok("s3cret", body + b" ", good)
    assert not signature_ok("other", body, good)
    assert not signature_ok("s3cret", body, good.removeprefix("sha256="))
    assert not signature_ok(None, body, good)
