"""The ledger store: every statement on sends, deliveries, outbox rows and leases."""
