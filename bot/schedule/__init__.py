"""Scheduled work (§5 of the spec): reminders, escalations, weekly digests. Due work lives in
tables; each process's scheduler only triggers short sweeps that claim it."""
