from piccolo.columns import ForeignKey, Integer, Timestamptz, Varchar
from piccolo.table import Table

from portal.accounts.tables import Member
from portal.connection.tables import Connection
from portal.cooperatives.tables import Cooperative


class Installation(Table, tablename="installation"):
    """The wizard of one cooperative's site: made by provisioning (or on the first visit of /install), finished
    when every council member has signed every regulation.

    status: key (waiting for the installation key) → council (the council is being entered) → invited (the
    invitations are out; the council signs) → active."""

    cooperative = ForeignKey(Cooperative, index=True)
    connection = ForeignKey(Connection)
    representative = ForeignKey(Member)  # the operator's member who signed the connection agreement
    status = Varchar(length=16, default="key", index=True)
    key_proved_at = Timestamptz(null=True, default=None)
    invitations_sent_at = Timestamptz(null=True, default=None)
    activated_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz()
    updated_at = Timestamptz()


class CouncilMember(Table, tablename="council_member"):
    """A person of the new cooperative's council, as the representative entered them; once they accept the
    invitation they are a member (Member of the cooperative) with a key of their own."""

    installation = ForeignKey(Installation, index=True)
    position = Integer(default=0)  # the order on the page; the chairman first
    role = Varchar(length=16, default="member")  # chairman | member
    last_name = Varchar(length=100)
    first_name = Varchar(length=100)
    patronymic = Varchar(length=100, default="")
    birth_date = Varchar(length=10)  # ISO date
    email = Varchar(length=254)
    phone = Varchar(length=20)
    member = ForeignKey(Member, null=True, default=None)  # the cooperative's member made from the invitation
    created_at = Timestamptz()


class Invitation(Table, tablename="council_invitation"):
    """A single-use invitation link (24 h), stored as the SHA-256 of its token; «Отправить ещё раз» voids the old one."""

    council_member = ForeignKey(CouncilMember, index=True)
    token_hash = Varchar(length=64, unique=True)
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)
    voided_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz()
