"""The one logging set-up of the whole app: structlog events, and the stdlib loggers of aiohttp,
socketio, engineio, alembic and asyncio, rendered by one renderer (`console` or `json`).

Rules: a traceback never shows local variables: they hold agents' passwords, provider tokens
and the signing key (a rich traceback with locals once wrote them all to the log on a store
failure). Console tracebacks are plain text; json tracebacks are dicts without locals. The
CLI calls `setup` before anything logs (a logger keeps the set-up of its first use); tests may
call it again and log through fresh loggers.
"""
from __future__ import annotations

import logging
import sys
from typing import IO, Literal, TextIO

import structlog
from structlog.tracebacks import ExceptionDictTransformer

Format = Literal["console", "json"]
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
SHARED: tuple = (
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
)
CHATTY = ("socketio.server", "engineio.server", "socketio.client", "engineio.client")


class Handler(logging.StreamHandler):
    """The root logger's handler that this module installs (and replaces on a later call)."""


def renderers(log_format: Format, stream: IO[str]) -> list:
    """The processors that turn an event (with its exception, if any) into one line or block of text."""
    if log_format == "json":
        no_locals = ExceptionDictTransformer(show_locals=False)
        return [structlog.processors.ExceptionRenderer(no_locals), structlog.processors.JSONRenderer()]
    colors = hasattr(stream, "isatty") and stream.isatty()
    return [structlog.dev.ConsoleRenderer(colors=colors, exception_formatter=structlog.dev.plain_traceback)]


def setup(log_format: Format = "console", level: str = "info", stream: TextIO | None = None) -> None:
    """Send every log event of the process, ours and the libraries', to `stream` (stderr) in one format."""
    stream = stream or sys.stderr
    tail = renderers(log_format, stream)
    structlog.configure(
        processors=[*SHARED, *tail],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=structlog.WriteLoggerFactory(file=stream),
        cache_logger_on_first_use=True,  # a logger used before this call would keep the defaults: call it first
    )
    _route_stdlib(tail, LEVELS[level], stream)


def _route_stdlib(tail: list, level: int, stream: IO[str]) -> None:
    """aiohttp, socketio, engineio, alembic and asyncio log through `logging`: the root logger gets our renderer."""
    handler = Handler(stream)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*SHARED, structlog.stdlib.add_logger_name],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail],
    ))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, Handler)]:  # ours from an earlier call; others stay
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in CHATTY:  # their INFO is one line per packet; with no level set they add a handler of their own
        chatty = logging.getLogger(name)
        chatty.setLevel(max(level, logging.WARNING))
        for theirs in list(chatty.handlers):
            chatty.removeHandler(theirs)
    logging.captureWarnings(True)
