"""Deliver queued webhook requests: claim one, send it outside any transaction, record the
result in the case's record and thread. A claim older than the lease is taken over, so a
process that died mid-send loses nothing (the request id keeps the re-send idempotent)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, or_, update
from sqlmodel import Session, col, select

from bot.clock import Clock
from bot.core import thread
from bot.core.context import unit_of_work
from bot.core.details import open_case_details
from bot.core.transitions import load_case
from bot.ops import metrics
from bot.usncb.requests import webhook_body
from bot.usncb.webhook import DeliveryResult, WebhookSender
from config.settings import Settings
from storage.models import Case, Delivery, UsncbRequest
from storage.vault import Vault

SYSTEM_ACTOR = "noticebot:usncb-webhook"
LEASE = timedelta(minutes=5)


def deliver_pending(*, engine: Engine, clock: Clock, settings: Settings,
                    sender: WebhookSender, limit: int = 50) -> int:
    """Send up to `limit` queued requests; returns how many were delivered."""
    delivered = 0
    for _ in range(limit):
        claimed = _claim(engine, clock.now(), Vault(settings.vault_keys))
        if claimed is None:
            break
        request_id, body = claimed
        result = sender.send(body)
        _finish(engine, clock, settings, request_id, result)
        metrics.usncb_delivery(result.delivered)
        delivered += result.delivered
    return delivered


def _claim(engine: Engine, now: datetime, vault: Vault) -> tuple[int, dict[str, Any]] | None:
    with Session(engine) as session, session.begin():
        candidate = session.exec(
            select(UsncbRequest).where(or_(
                col(UsncbRequest.delivery) == Delivery.pending,
                (col(UsncbRequest.delivery) == Delivery.sending)
                & (col(UsncbRequest.claimed_at) < now - LEASE),
            )).order_by(col(UsncbRequest.id)).limit(1)
        ).first()
        if candidate is None:
            return None
        # Conditional claim: of two deliverers only one moves the row to 'sending'.
        won = session.execute(
            update(UsncbRequest)
            .where(col(UsncbRequest.id) == candidate.id,
                   col(UsncbRequest.delivery) == candidate.delivery,
                   col(UsncbRequest.claimed_at).is_(None) if candidate.claimed_at is None
                   else col(UsncbRequest.claimed_at) == candidate.claimed_at)
            .values(delivery=Delivery.sending.value, claimed_at=now)
        ).rowcount  # type: ignore[attr-defined]
        if won != 1:
            return None
        case = session.get(Case, candidate.case_id)
        assert case is not None and candidate.id is not None
        reference = open_case_details(vault, case).notice_reference
        return candidate.id, webhook_body(case, candidate, notice_reference=reference)


def _finish(engine: Engine, clock: Clock, settings: Settings, request_id: int,
            result: DeliveryResult) -> None:
    with unit_of_work(engine, clock=clock, settings=settings, actor=SYSTEM_ACTOR) as ctx:
        request = ctx.session.get(UsncbRequest, request_id, with_for_update=True)
        assert request is not None
        request.delivery_attempts += result.attempts
        if result.delivered:
            request.delivery, request.delivered_at = Delivery.delivered.value, ctx.now
            request.delivery_error = None
            if result.reference and not request.reference:
                request.reference = result.reference
            ctx.state("usncb.request_delivered", case_id=request.case_id,
                      request_id=request.id, attempts=result.attempts,
                      reference=result.reference)
        else:
            request.delivery, request.delivery_error = Delivery.failed.value, result.error
            ctx.state("usncb.delivery_failed", case_id=request.case_id, request_id=request.id,
                      attempts=result.attempts, error=result.error)
        ctx.session.add(request)
        thread.sync(ctx, load_case(ctx, request.case_id))
