"""GET /relays: the configured relays as the send core's relay pool sees them."""
