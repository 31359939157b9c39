from piccolo.columns import ForeignKey, Text, Timestamptz, Varchar
from piccolo.table import Table

from portal.accounts.tables import Member
from portal.applications.tables import Application
from portal.cooperatives.tables import Cooperative
from portal.documents.tables import Document
from portal.payments.tables import Invoice


class AdmissionDecision(Table, tablename="admission_decision"):
    """The council's decision on an applicant: made once (one row per application, the database keeps it so).

    An admission is numbered within the cooperative («Р-2026-0001»; ``number_key`` keeps numbers unique) and
    issued as a sealed document of the member (``document``); a refusal carries its reason and no number."""

    application = ForeignKey(Application, unique=True)
    member = ForeignKey(Member, index=True)
    cooperative = ForeignKey(Cooperative, index=True)
    invoice = ForeignKey(Invoice, null=True, default=None)  # the paid fees invoice the decision rests on
    decision = Varchar(length=16, index=True)  # admitted | refused
    number = Varchar(length=32, default="")  # «Р-2026-0001» (admissions only)
    number_key = Varchar(length=64, null=True, default=None, unique=True)  # "<cooperative id>:<number>"
    refusal_reason = Text(default="")
    document = ForeignKey(Document, null=True, default=None)  # the decision PDF (admissions)
    staff_email = Varchar(length=255, default="")  # who recorded it
    decided_at = Timestamptz()
