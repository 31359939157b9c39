"""The cooperatives the portal knows; the operator ВОСХОД comes from the settings."""

from __future__ import annotations

import dataclasses
import json

from portal.clock import now
from portal.cooperatives.tables import Cooperative
from portal.settings import OperatorRequisites


def operator_values(op: OperatorRequisites, site: str) -> dict:
    """The operator's row as the settings describe it (``site`` — the portal's URL)."""
    values = dataclasses.asdict(op)
    values["processors"] = json.dumps(
        [{"name": n, "address": a, "purpose": p} for n, a, p in op.processors], ensure_ascii=False)
    values["site"] = site
    return values


def processors_of(cooperative: dict) -> list[dict]:
    return json.loads(cooperative.get("processors") or "[]")


async def ensure_operator(op: OperatorRequisites, site: str = "") -> int:
    """Create the operator cooperative on first start; later starts bring its requisites and fees up to date
    with the settings (documents signed earlier keep their own copy of what they said)."""
    values = operator_values(op, site)
    row = await Cooperative.select(Cooperative.id).where(Cooperative.is_operator == True).first()  # noqa: E712
    if row:
        await Cooperative.update({getattr(Cooperative, k): v for k, v in values.items()}).where(
            Cooperative.id == row["id"])
        return row["id"]
    rows = await Cooperative.insert(Cooperative(**values, is_operator=True, created_at=now())).returning(
        Cooperative.id)
    return rows[0]["id"]


async def operator() -> dict:
    return await Cooperative.select().where(Cooperative.is_operator == True).first()  # noqa: E712
