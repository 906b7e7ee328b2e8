"""Outbound webhooks: events in an outbox, a signed, SSRF-safe sender loop."""
