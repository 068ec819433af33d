"""The background work of a node: routing, outbox, CRM outbox, scenario runner, timers."""
