"""The scenario language and engine. For now: line-numbered loading of YAML documents."""
from scenarios.source import Document, Problem, SourceError, load, parse

__all__ = ["Document", "Problem", "SourceError", "load", "parse"]
