"""Inbound bounces and complaints: VERP return paths, DSN/ARF parsing, suppression decisions."""
