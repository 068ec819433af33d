"""The SMS edges inside the app: webhooks, SMPP glue, the loopback, delivery statuses."""
