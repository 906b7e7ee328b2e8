"""The editor console: server-rendered pages under /editor/ over the same services as the API."""
