"""The didchat application: configuration, store, conversations, routing, agents, outbox,
scenarios at work, HTTP API and CLI. Its public surface is the app factory."""
from chat.app import create_app

__all__ = ["create_app"]
