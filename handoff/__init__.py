"""Bot-to-bot and bot-to-human handoff: the config, the payload contract and the Rasa actions."""
