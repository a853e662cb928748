"""Intents, the order state machine, and the one router through which every order goes."""
