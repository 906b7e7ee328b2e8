"""Sequences (welcome series, drips): steps sent to each reader at set times after a trigger."""
