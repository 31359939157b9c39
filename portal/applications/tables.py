from piccolo.columns import JSON, ForeignKey, Timestamptz, Varchar
from piccolo.table import Table

from portal.accounts.tables import Member


class Application(Table, tablename="application"):
    """A member's joining application: the draft as typed, then signed once."""

    member = ForeignKey(Member, index=True)
    applicant_type = Varchar(length=16, default="organization")  # organization | individual | entrepreneur
    draft = JSON(default="{}")  # every field as typed, saved as it is filled
    status = Varchar(length=16, default="draft", index=True)  # draft | signed
    signing_nonce = Varchar(length=64, null=True, default=None)  # one signing attempt; cleared when used
    created_at = Timestamptz()
    updated_at = Timestamptz()
    signed_at = Timestamptz(null=True, default=None)
