"""Notification templates and who is told: pure functions."""

from __future__ import annotations

import msgspec
import pytest

from exchange.errors import ApiError
from exchange.notifications import outbox, service, templates, unowned
from exchange.notifications.messages import NotificationConfigIn


def test_known_placeholders_render_and_missing_values_are_empty():
    text = "Lead $lead_id (${vertical}) score $score for $agent_name; $$5"
    assert templates.problems(text) == []
    out = templates.render(text, {"lead_id": "L1", "vertical": "solar", "agent_name": "Ana"})
    assert out == "Lead L1 (solar) score  for Ana; $5"


@pytest.mark.parametrize("text", ["Hi $first_name", "${phone}", "x $email y"])
def test_unknown_placeholders_are_refused(text):
    [problem] = templates.problems(text)
    assert "unknown placeholder" in problem


def test_bad_syntax_is_refused():
    assert templates.problems("costs $ 5") != []


def test_config_check_names_the_field():
    cfg = msgspec.convert(
        {"templates": {"offered": {"webhook": {"body": "$lead_id $ssn"}}}}, NotificationConfigIn
    )
    with pytest.raises(ApiError) as err:
        service.check(cfg)
    assert err.value.status == 422
    assert [f.path for f in err.value.body.fields] == ["templates.offered.webhook.body"]


def test_recipients_by_rule():
    cfg = msgspec.convert(
        {
            "agent": {"events": ["offered"], "channels": ["email", "webhook"]},
            "managers": [
                {"email": "all@x.test", "events": ["assigned", "reassigned"]},
                {"email": "hot@x.test", "events": ["assigned"], "min_score": 80},
            ],
            "webhook": {"url": "https://hooks.test/n", "secret": "s" * 16},
        },
        NotificationConfigIn,
    )
    assert outbox.recipients(cfg, "offered", 90, "a@x.test") == [
        ("agent", "email", "a@x.test"), ("agent", "webhook", "https://hooks.test/n"),
    ]  # fmt: skip
    assert outbox.recipients(cfg, "offered", 90, None) == [("agent", "webhook", "https://hooks.test/n")]
    assert outbox.recipients(cfg, "assigned", 79, "a@x.test") == [
        ("manager:all@x.test", "email", "all@x.test")
    ]
    assert [r[2] for r in outbox.recipients(cfg, "assigned", 80, None)] == ["all@x.test", "hot@x.test"]
    assert outbox.recipients(cfg, "assigned", None, None) == [("manager:all@x.test", "email", "all@x.test")]


def test_default_message_when_no_template():
    cfg = NotificationConfigIn()
    subject, body = outbox.message(cfg, "assigned", "email", {"lead_id": "L1", "event": "assigned"})
    assert subject.startswith("Lead L1 assigned")


def test_unowned_has_its_own_default_text_and_only_managers_hear_of_it():
    cfg = msgspec.convert(
        {"unowned_minutes": 15, "agent": {"events": ["assigned"]},
         "managers": [{"email": "m@x.test", "events": ["unowned"], "min_score": 50},
                      {"email": "hook@x.test", "events": ["unowned"], "channels": ["webhook"]}]},
        NotificationConfigIn,
    )  # fmt: skip
    values = {"lead_id": "L1", "vertical": "solar", "team_name": "Floor", "routed_at": "2026-11-24T09:00:00+00:00"}
    subject, body = outbox.message(cfg, "unowned", "email", values)
    assert subject == "Lead L1 has no owner (solar)"
    assert "routed to Floor at 2026-11-24T09:00:00+00:00 and nobody owns it" in body
    assert outbox.recipients(cfg, "unowned", 60, None) == [("manager:m@x.test", "email", "m@x.test")]
    assert outbox.recipients(cfg, "unowned", 40, None) == []  # no webhook set: hook@ is not told
    assert unowned.min_score(cfg) == (True, 50)
    assert unowned.min_score(NotificationConfigIn()) == (False, None)
    service.check(cfg)  # the rule has its minutes
    with pytest.raises(ApiError) as err:
        service.check(msgspec.structs.replace(cfg, unowned_minutes=None))
    assert [f.path for f in err.value.body.fields] == ["managers[0].events", "managers[1].events"]
