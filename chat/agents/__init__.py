"""The agents' side: the Socket.IO namespace, sessions, login, tokens, the HTTP ops endpoints."""
