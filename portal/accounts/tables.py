from piccolo.columns import JSON, ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.table import Table

from portal.connect.tables import ConnectRequest, RegistrationLink
from portal.cooperatives.tables import Cooperative


class Member(Table, tablename="member"):
    """A member (пайщик) of a cooperative, identified by a confirmed e-mail and a member key."""

    cooperative = ForeignKey(Cooperative, index=True)
    email = Varchar(length=254, index=True)
    connect_request = ForeignKey(ConnectRequest, null=True, default=None)
    display_name = Varchar(length=300, default="")
    email_confirmed_at = Timestamptz()
    created_at = Timestamptz()
    # Sessions remember the epoch they were opened in; «Выйти на всех устройствах» moves it on.
    sessions_epoch = Integer(default=0)


class MemberKey(Table, tablename="member_key"):
    """A member's Ed25519 public key; a replaced key is revoked but kept, so old signatures stay verifiable."""

    member = ForeignKey(Member, index=True)
    public_key = Varchar(length=64)  # base64 of the raw 32 bytes
    fingerprint = Varchar(length=64)
    created_at = Timestamptz()
    revoked_at = Timestamptz(null=True, default=None)


class AuthChallenge(Table, tablename="auth_challenge"):
    """A one-time server challenge the browser signs to log in."""

    nonce_hash = Varchar(length=64, unique=True)
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)


class RecoveryLink(Table, tablename="recovery_link"):
    """A single-use link to set a new member key; only the token's hash is stored."""

    member = ForeignKey(Member, index=True)
    token_hash = Varchar(length=64, unique=True)
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz()


class PepAcceptance(Table, tablename="pep_acceptance"):
    """The member's acceptance of the cooperative's ПЭП offer (ГК arts. 428, 435, 438; 63-ФЗ art. 9 part 2),
    made at registration before the key is created: which text (template id, version, SHA-256, and the
    cooperative's values it was shown with), when, from where."""

    member = ForeignKey(Member, index=True)
    cooperative = ForeignKey(Cooperative, index=True)
    template_id = Varchar(length=64)
    template_version = Integer()
    template_sha256 = Varchar(length=64)
    offer_context = JSON(default="{}")  # {"cooperative": …}: the text re-renders exactly as it was accepted
    email = Varchar(length=254)
    accepted_at = Timestamptz()
    ip = Varchar(length=64, default="")
    user_agent = Text(default="")


class PepAcceptancePending(Table, tablename="pep_acceptance_pending"):
    """The ПЭП offer accepted on the registration page («Принять оферту»), before the key is made and before the
    member exists: tied to the registration link, it becomes the member's ``PepAcceptance`` (same time, IP and
    user agent) when the registration succeeds, and is deleted then."""

    registration_link = ForeignKey(RegistrationLink, index=True)
    cooperative = ForeignKey(Cooperative)
    template_id = Varchar(length=64)
    template_version = Integer()
    template_sha256 = Varchar(length=64)
    offer_context = JSON(default="{}")  # the cooperative's values the offer was shown with
    context_sha256 = Varchar(length=64)  # their canonical SHA-256, as the page carried it
    email = Varchar(length=254)  # the link's address
    accepted_at = Timestamptz()
    ip = Varchar(length=64, default="")
    user_agent = Text(default="")
