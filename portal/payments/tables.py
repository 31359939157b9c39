from piccolo.columns import JSON, BigInt, Date, ForeignKey, Text, Timestamptz, Varchar
from piccolo.table import Table

from portal.accounts.tables import Member
from portal.cooperatives.tables import Cooperative


class Invoice(Table, tablename="invoice"):
    """A bill for a member's fees (kopecks). Its number is unique within the cooperative and is what a bank
    transfer's purpose names; the amounts are copied from the cooperative's settings when it is issued."""

    cooperative = ForeignKey(Cooperative, index=True)
    member = ForeignKey(Member, index=True)
    number = Varchar(length=32, index=True)  # «В-2026-000001» (service.invoice_number)
    number_key = Varchar(length=64, unique=True)  # "<cooperative id>:<number>": the database keeps numbers unique
    purpose = Varchar(length=40, default="fees")  # fees (entrance + minimal share)
    lines = JSON(default="[]")  # [{"title": "Вступительный взнос", "amount": 100000}, …]
    total = BigInt()  # kopecks
    status = Varchar(length=16, default="issued", index=True)  # issued | paid | cancelled
    paid_amount = BigInt(default=0)  # kopecks credited so far
    issued_at = Timestamptz()
    paid_at = Timestamptz(null=True, default=None)


class Payment(Table, tablename="payment"):
    """Money that arrived (or was confirmed): from a bank statement, by staff by hand, or from ЮKassa.

    ``source`` + ``external_id`` is unique: the same statement line, the same ЮKassa payment or the same manual
    confirmation arriving twice is stored (and credited) once."""

    cooperative = ForeignKey(Cooperative, index=True)
    invoice = ForeignKey(Invoice, null=True, default=None, index=True)  # None: not matched (staff match by hand)
    source = Varchar(length=16)  # statement | manual | yookassa
    external_id = Varchar(length=128)  # statement line hash / staff reference / ЮKassa payment id
    dedup_key = Varchar(length=200, unique=True)  # "<cooperative id>:<source>:<external_id>"
    amount = BigInt()  # kopecks
    paid_on = Date(null=True, default=None)  # the bank's date
    reference = Varchar(length=128, default="")  # the bank's document number / reference
    payer = Varchar(length=500, default="")
    payer_inn = Varchar(length=12, default="")
    purpose = Text(default="")
    status = Varchar(length=16, default="unmatched", index=True)  # credited | unmatched | pending | cancelled
    created_at = Timestamptz()
