"""Intake adapters beside the native ping/post API: HTML forms, Google Ads lead form webhooks,
Meta lead ads, CSV batches and inbound email. Each adapter only translates its source's payload
into the ``LeadIn`` of the native API (through the source's operator-editable mapping) and then
runs the very same direct post: validation, dedupe, scoring, the auction and team routing."""
