"""The one Piccolo app of the portal: every domain's tables and the migrations folder."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from portal.db import all_tables

APP_CONFIG = AppConfig(
    app_name="portal",
    migrations_folder_path=str(Path(__file__).parent / "migrations"),
    table_classes=all_tables(),
    migration_dependencies=[],
    commands=[],
)
