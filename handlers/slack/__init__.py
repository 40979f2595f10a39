"""The Slack (and GovSlack) surface: Bolt handlers that parse, call the core and render."""
