"""A lead's accounts for account routing: phones, emails, company domains (pure)."""

from __future__ import annotations

from exchange.teams.accounts import account_keys, accounts


def test_phones_emails_and_company_domains_are_found_by_shape():
    found = accounts([("phone", "+14155552671"), ("email", "Pat@Acme-Solar.com"),
                      ("first_name", "Pat"), ("zip", "94103"), ("age", 41)])  # fmt: skip
    assert found == [("phone", "+14155552671"), ("email", "pat@acme-solar.com"),
                     ("domain", "acme-solar.com")]  # fmt: skip


def test_free_mail_and_example_domains_are_not_companies():
    for email in ("pat@gmail.com", "pat@example.com", "pat@mail.example.org", "pat@corp.test"):
        assert [kind for kind, _ in accounts([("email", email)])] == ["email"], email


def test_a_website_field_names_the_company():
    assert accounts([("website", "https://www.Acme-Solar.com/about")]) == [
        ("domain", "acme-solar.com")]  # fmt: skip
    assert accounts([("website", "gmail.com")]) == []
    assert accounts([("notes", "https://acme-solar.com")]) == []  # only the named fields


def test_keys_are_keyed_hashes_that_depend_on_the_secret():
    one = account_keys("s1", {"email": "pat@acme-solar.com"}, None)
    two = account_keys("s2", {"email": "pat@acme-solar.com"}, None)
    assert [k for k, _ in one] == ["email", "domain"]
    assert all(len(h) == 64 and "acme" not in h for _, h in one)
    assert {h for _, h in one}.isdisjoint({h for _, h in two})
    # The same company from two people: the same domain key.
    other = account_keys("s1", {"email": "sam@acme-solar.com"}, None)
    assert one[1] == other[1] and one[0] != other[0]
