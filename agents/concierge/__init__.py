"""The concierge: a small A2A agent of our own, a ``kind: a2a`` host for tests and demos."""
