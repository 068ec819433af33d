"""The didchat application: configuration, store, conversations, routing, agents, outbox,
scenarios at work, HTTP API and CLI. Its public surface is the app factory."""

__all__ = ["create_app"]


def __getattr__(name: str):
    """`chat.create_app`, imported on first use: the CLI's --help must not load the whole app."""
    if name == "create_app":
        from chat.app import create_app
        return create_app
    raise AttributeError(f"module 'chat' has no attribute {name!r}")
