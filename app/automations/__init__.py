"""Automations that create ledger rows like any send: RSS/Atom feeds into issues (more to come)."""
