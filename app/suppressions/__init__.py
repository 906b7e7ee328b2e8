"""The suppression list: addresses (kept only as SHA-256 hashes) that are never mailed."""
