from piccolo.columns import Bytea, Timestamptz, Varchar
from piccolo.table import Table


class StoreEntry(Table, tablename="kv_store"):
    """One value of the shared store: a session, a rate-limit counter. Gone after expires_at."""

    key = Varchar(length=300, unique=True)
    value = Bytea()
    expires_at = Timestamptz(null=True, default=None, index=True)
