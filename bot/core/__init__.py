"""The workflow core: the directive's rules, platform-neutral. See `bot.core.service.Core`."""
