"""The channel through which requests reach the USNCB and its answers come back (§2.1, §2.2,
§5.1, §6): manual (the officer sends them) or a signed HTTP webhook."""
