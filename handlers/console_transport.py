"""The console as a delivery transport: the console consumes the outbox through the same
delivery loop as Slack, and only the console's rows (see docs/delivery.md).

Its conversations say what the terminal prints: `channel:<id>`, `thread:<case id>`,
`dm:<person id>`. A case's root message is posted with the case id as its ref, so replies in
its thread name the case, as the console always showed them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from bot.delivery.port import Address, Pacing, Platform, Posted, Recipient
from bot.messages import Message

# Prints one message: (kind: channel | thread | dm, destination, message, updated).
Show = Callable[[str, str, Message, bool], None]


class ConsoleTransport:
    """Every post and update is printed through `show`; nothing fails, nothing is paced."""

    platform = Platform.console
    pacing = Pacing(per_conversation=0.0)
    can_find = False

    def __init__(self, show: Show) -> None:
        self.show = show

    def post(self, *, to: Address, message: Message, outbox_id: int,
             people: Mapping[str, Recipient]) -> Posted:
        if to.thread is not None:
            where = f"thread:{to.thread}"
        elif to.conversation.startswith("dm:"):
            where = to.conversation
        else:
            where = f"channel:{to.conversation}"
        kind, _, destination = where.partition(":")
        self.show(kind, destination, message, False)
        key = message.key or ""
        return Posted(conversation=where,
                      ref=key.removesuffix(":root") if key.endswith(":root") else str(outbox_id))

    def update(self, *, posted: Posted, message: Message,
               people: Mapping[str, Recipient]) -> None:
        kind, _, destination = posted.conversation.partition(":")
        self.show(kind, destination, message, True)

    def open_dm(self, *, recipient: Recipient) -> str:
        return f"dm:{recipient.user_id}"

    def find(self, *, to: Address, outbox_id: int) -> str | None:
        return None
