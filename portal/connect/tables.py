from piccolo.columns import ForeignKey, Text, Timestamptz, Varchar
from piccolo.table import Table


class ConnectRequest(Table, tablename="connect_request"):
    """A cooperative's request to connect (journey J0)."""

    coop_name = Varchar(length=300)
    inn = Varchar(length=12, index=True)
    contact_name = Varchar(length=200)
    email = Varchar(length=254)
    phone = Varchar(length=12)
    domain = Varchar(length=253, default="")  # punycode
    union_member = Varchar(length=16)  # yes | no | in_progress
    message = Text(default="")
    status = Varchar(length=16, default="new", index=True)  # new | invited | rejected
    reject_reason = Text(default="")
    # Casefolded copy of the searchable fields: SQLite's LIKE ignores case only for ASCII.
    search_text = Text(default="")
    ip = Varchar(length=64, default="")
    created_at = Timestamptz()
    decided_at = Timestamptz(null=True, default=None)


class RegistrationLink(Table, tablename="registration_link"):
    """A single-use link /join/{token}; only the token's SHA-256 is stored."""

    connect_request = ForeignKey(ConnectRequest, index=True)
    token_hash = Varchar(length=64, unique=True)
    email = Varchar(length=254)
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz()
