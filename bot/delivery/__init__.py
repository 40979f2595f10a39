"""Platform-neutral delivery of the outbox: the port every chat platform's transport implements."""
