from piccolo.columns import JSON, Text, Timestamptz, Varchar
from piccolo.table import Table


class AuditEvent(Table, tablename="audit_event"):
    actor_type = Varchar(length=16)  # staff | member | system | visitor
    actor_id = Varchar(length=64, default="")
    actor_label = Varchar(length=255, default="")
    action = Varchar(length=100, index=True)
    object_type = Varchar(length=50, default="")
    object_id = Varchar(length=64, default="")
    details = JSON(default="{}")
    ip = Varchar(length=64, default="")
    user_agent = Text(default="")
    created_at = Timestamptz(index=True)
