"""Microsoft Teams adapter: the SDK app (inbound), Adaptive Cards, the outbound transport and the
`noticebot teams` commands. The core knows nothing of Teams."""
