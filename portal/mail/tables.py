from piccolo.columns import Integer, Text, Timestamptz, Varchar
from piccolo.table import Table


class OutboxMessage(Table, tablename="outbox_message"):
    """A message waiting to be sent; written in the same transaction as the change that causes it."""

    to_addr = Varchar(length=255)
    subject = Varchar(length=500)
    body_text = Text()
    status = Varchar(length=16, default="pending", index=True)  # pending | sent | failed
    attempts = Integer(default=0)
    next_attempt_at = Timestamptz(index=True)
    claimed_until = Timestamptz(null=True, default=None)
    claim_token = Varchar(length=64, null=True, default=None)
    last_error = Text(default="")
    created_at = Timestamptz()
    sent_at = Timestamptz(null=True, default=None)
