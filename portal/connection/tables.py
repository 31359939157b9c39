from piccolo.columns import JSON, Boolean, ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.table import Table

from portal.accounts.tables import Member
from portal.cooperatives.tables import Cooperative
from portal.documents.tables import Document


class Connection(Table, tablename="connection"):
    """A member's connection agreement: typed as a draft, then signed once and frozen; a change is a new row,
    which replaces the current one (status "replaced") only when it is signed.

    status: draft → signed → approved (staff, the operator's seal countersigns) | returned (with a reason).
    The site of the cooperative (``cooperative``) is made by provisioning once the connection is approved and the
    domain points at the server.
    """

    member = ForeignKey(Member, index=True)
    operator = ForeignKey(Cooperative, index=True)  # the party that connects (ВОСХОД)
    status = Varchar(length=16, default="draft", index=True)  # draft | signed | approved | returned | replaced
    fee_entrance_org = Integer(default=0)  # kopecks
    fee_share_org = Integer(default=0)
    fee_entrance_ind = Integer(default=0)
    fee_share_ind = Integer(default=0)
    domain = Varchar(length=255, default="", index=True)  # punycode, lower case
    hosting = Varchar(length=16, default="hosted")  # hosted | self
    description = Text(default="")
    draft = JSON(default="{}")  # the form as typed (also invalid values), kept between visits
    signing_nonce = Varchar(length=64, null=True, default=None)
    document = ForeignKey(Document, null=True, default=None)  # the agreement signed by the member
    approved_document = ForeignKey(Document, null=True, default=None)  # the same, countersigned by the seal
    return_reason = Text(default="")
    decided_by = Varchar(length=254, default="")  # the staff member who approved or returned it
    decided_at = Timestamptz(null=True, default=None)
    dns_status = Varchar(length=16, default="unknown")  # unknown | missing | elsewhere | delegated
    dns_addresses = Varchar(length=500, default="")  # what the domain points to, comma-separated
    dns_checked_at = Timestamptz(null=True, default=None)
    cooperative = ForeignKey(Cooperative, null=True, default=None, index=True)  # the provisioned site
    created_at = Timestamptz()
    updated_at = Timestamptz()
    signed_at = Timestamptz(null=True, default=None)


class DomainClaim(Table, tablename="domain_claim"):
    """A domain taken by a member's signed agreement: the database keeps one member per domain."""

    domain = Varchar(length=255, unique=True)
    member = ForeignKey(Member, index=True)
    created_at = Timestamptz()


class ProvisionJob(Table, tablename="provision_job"):
    """Provisioning of one connection's site: stages run in order by whichever process claims the job first;
    a claim is a lease (``lease_until``) so a job of a process that died is taken again."""

    connection = ForeignKey(Connection, index=True)
    status = Varchar(length=16, default="queued", index=True)  # queued | running | done | failed
    stage = Varchar(length=32, default="")  # the stage running or that failed
    stages = JSON(default="{}")  # {stage: {"status": "done"|"running"|"failed", "output": "…", "at": iso}}
    attempts = Integer(default=0)
    claimed_by = Varchar(length=100, default="")
    lease_until = Timestamptz(null=True, default=None)
    error = Text(default="")
    created_at = Timestamptz()
    updated_at = Timestamptz()
    finished_at = Timestamptz(null=True, default=None)


class ApiToken(Table, tablename="api_token"):
    """A token of a self-hosted cooperative's server for the operator's API (stored as its SHA-256)."""

    member = ForeignKey(Member, index=True)
    token_sha256 = Varchar(length=64, unique=True)
    prefix = Varchar(length=12, default="")  # the first characters, to tell tokens apart in the cabinet
    created_at = Timestamptz()
    last_used_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)
