"""Notifications and remote control over Telegram: one more client of the committed
records (the feed) and the controls (the desk), in a thread of its own."""
