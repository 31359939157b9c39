from piccolo.columns import Boolean, Integer, Text, Timestamptz, Varchar
from piccolo.table import Table


class Cooperative(Table, tablename="cooperative"):
    """A cooperative known to the portal: the operator ВОСХОД and, later, connected ones."""

    name_full = Varchar(length=500)
    name_short = Varchar(length=255)
    inn = Varchar(length=12, index=True)
    kpp = Varchar(length=9, default="")
    ogrn = Varchar(length=15, default="")
    address = Varchar(length=500, default="")
    email = Varchar(length=255, default="")
    phone = Varchar(length=20, default="")
    bank_name = Varchar(length=255, default="")
    bik = Varchar(length=9, default="")
    corr_account = Varchar(length=20, default="")
    settlement_account = Varchar(length=20, default="")
    domain = Varchar(length=255, default="", index=True)
    is_operator = Boolean(default=False, index=True)
    fee_entrance_org = Integer(default=0)
    fee_share_org = Integer(default=0)
    fee_entrance_ind = Integer(default=0)
    fee_share_ind = Integer(default=0)
    city = Varchar(length=100, default="")  # the place printed next to a document's date, «г. Москва»
    site = Varchar(length=255, default="")  # the URL of its portal (the information system of the ПЭП offer)
    charter = Text(default="")  # the charter's edition and where it is published
    processors = Text(default="[]")  # JSON: [{"name", "address", "purpose"}] — who processes members' data
    description = Text(default="")  # what the cooperative does (from its connection agreement)
    # The site's state: "installing" — provisioned, the installation wizard not finished; "active"; "suspended".
    status = Varchar(length=16, default="active", index=True)
    created_at = Timestamptz()
