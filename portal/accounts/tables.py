from piccolo.columns import ForeignKey, Integer, Timestamptz, Varchar
from piccolo.table import Table

from portal.connect.tables import ConnectRequest
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
