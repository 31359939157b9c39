from piccolo.columns import Bytea, ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.table import Table

from portal.accounts.tables import Member, MemberKey


class SignatureImage(Table, tablename="signature_image"):
    """A drawn signature (PNG), stored once by its SHA-256."""

    sha256 = Varchar(length=64, unique=True)
    png = Bytea()
    created_at = Timestamptz()


class Document(Table, tablename="document"):
    """A signed document: the canonical JSON, its hash and the PDF rendered once (never changes)."""

    member = ForeignKey(Member, index=True)
    package = Varchar(length=32, index=True)  # e.g. "join" — documents signed together
    template_id = Varchar(length=64)
    template_version = Integer()
    title = Varchar(length=300)
    canonical_json = Text()
    document_hash = Varchar(length=64, index=True)
    pdf = Bytea()
    pdf_sha256 = Varchar(length=64, index=True)
    created_at = Timestamptz()


class Signature(Table, tablename="signature"):
    document = ForeignKey(Document, index=True)
    member = ForeignKey(Member, index=True)
    member_key = ForeignKey(MemberKey)
    full_name = Varchar(length=300)
    role = Varchar(length=100)
    email = Varchar(length=254)
    signature_b64 = Varchar(length=128)
    image = ForeignKey(SignatureImage)
    signed_at = Timestamptz()
    ip = Varchar(length=64, default="")
    user_agent = Text(default="")
