"""The directive's steps, one module each: what the step asks (its form), what it says (its
prompt), who may act and when, and where it leads. `bot.core.workflow` collects them."""
