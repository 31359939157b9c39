"""The cooperatives the portal knows; the operator ВОСХОД is created on first start from settings."""

from __future__ import annotations

from portal.clock import now
from portal.cooperatives.tables import Cooperative
from portal.settings import OperatorRequisites


async def ensure_operator(op: OperatorRequisites) -> int:
    """Create the operator cooperative once; later starts keep what is stored."""
    row = await Cooperative.select(Cooperative.id).where(Cooperative.is_operator == True).first()  # noqa: E712
    if row:
        return row["id"]
    rows = await Cooperative.insert(
        Cooperative(
            name_full=op.name_full,
            name_short=op.name_short,
            inn=op.inn,
            kpp=op.kpp,
            ogrn=op.ogrn,
            address=op.address,
            email=op.email,
            phone=op.phone,
            bank_name=op.bank_name,
            bik=op.bik,
            corr_account=op.corr_account,
            settlement_account=op.settlement_account,
            is_operator=True,
            fee_entrance_org=op.fee_entrance_org,
            fee_share_org=op.fee_share_org,
            fee_entrance_ind=op.fee_entrance_ind,
            fee_share_ind=op.fee_share_ind,
            created_at=now(),
        )
    ).returning(Cooperative.id)
    return rows[0]["id"]


async def operator() -> dict:
    return await Cooperative.select().where(Cooperative.is_operator == True).first()  # noqa: E712
