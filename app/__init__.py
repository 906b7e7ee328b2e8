"""Morning Post: a self-hosted newsletter delivery service."""
