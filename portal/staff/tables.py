from piccolo.columns import Boolean, Integer, Timestamptz, Varchar
from piccolo.table import Table


class StaffUser(Table, tablename="staff_user"):
    email = Varchar(length=255, unique=True)
    password_hash = Varchar(length=255)
    is_active = Boolean(default=True)
    created_at = Timestamptz()
    last_login_at = Timestamptz(null=True, default=None)
    sessions_epoch = Integer(default=0)  # «Выйти на всех устройствах» moves it on
