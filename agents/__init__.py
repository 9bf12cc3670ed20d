"""Hosts of our own that speak protocols other than Rasa's REST channel, for tests and demos."""
