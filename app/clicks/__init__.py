"""Privacy-respecting click counts: the /l/<token> redirect and per-link figures."""
