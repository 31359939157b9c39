"""The `portal` command: serve, migrate, create-staff, worker, docs, verify."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

import click

from portal.settings import Settings, SettingsError, load_settings


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        click.echo(f"Ошибка настройки / configuration error: {exc}", err=True)
        sys.exit(2)


async def _migrate(settings: Settings) -> None:
    from portal import db
    from portal.cooperatives.service import ensure_operator

    db.configure_database(settings)
    await db.start(settings)
    try:
        try:
            report = await db.migrate()
        except RuntimeError as exc:  # a database the migrations cannot bring up to date: said, not a traceback
            click.echo(str(exc), err=True)
            sys.exit(1)
        click.echo(report.summary())
        await ensure_operator(settings.operator, settings.base_url)
    finally:
        await db.stop(settings)


async def _sync_instance(settings: Settings) -> None:
    """A self-hosted instance takes its cooperative from the operator once, before the workers start: a refusal
    is one clear line, not a traceback from every worker."""
    from portal import db
    from portal.connection.instance import sync_from_operator

    db.configure_database(settings)
    await db.start(settings)
    try:
        await sync_from_operator(settings)
    finally:
        await db.stop(settings)


@click.group()
def main() -> None:
    """Портал подключения кооперативов ПК «ВОСХОД»."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("weasyprint", "fontTools", "pyhanko", "piccolo"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@main.command()
def migrate() -> None:
    """Применить миграции базы данных."""
    asyncio.run(_migrate(_settings()))


@main.command()
@click.option("--host", default=None, help="Адрес (по умолчанию $HOST или 127.0.0.1)")
@click.option("--port", default=None, type=int, help="Порт (по умолчанию $PORT или 8000)")
@click.option("--workers", default=None, type=click.IntRange(min=1),
              help="Число процессов (по умолчанию $PORTAL_WORKERS или число ядер)")
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Применить миграции, собрать документацию (если её нет или она устарела) и запустить портал."""
    import os

    from portal import docs_site, server
    from portal.documents.seal import ensure_seal_identity

    host = host or os.environ.get("HOST", "127.0.0.1")
    port = port or int(os.environ.get("PORT", "8000"))
    workers = workers or int(os.environ.get("PORTAL_WORKERS", "0") or 0) or server.default_workers()
    os.environ["PORT"] = str(port)  # the workers read the same settings (PORTAL_BASE_URL defaults to this port)
    settings = _settings()
    asyncio.run(_migrate(settings))
    if settings.operator_url:
        from portal.connection.instance import OperatorSyncError

        try:
            asyncio.run(_sync_instance(settings))
        except OperatorSyncError as exc:
            click.echo(f"Портал не запущен: {exc}", err=True)
            sys.exit(2)
    identity = ensure_seal_identity(settings.data_dir, settings.operator.name_short)  # once, before the workers
    warning = seal_warning(identity)
    if warning:
        click.echo(warning, err=True)
    try:
        docs_site.ensure_built(settings.site_dir, tariff=settings.tariff, base_url=settings.base_url,
                               seal_sha256=docs_site.seal_fingerprints(settings.seal_sha256, settings.data_dir))
    except Exception as exc:  # the portal still serves without the docs
        click.echo(f"Документация не собрана / docs not built: {exc}", err=True)
    click.echo(f"Портал: http://{host}:{port} — granian, процессов: {workers}")
    server.run(settings, host, port, workers)


def seal_warning(identity) -> str | None:
    """A note for the operator when the seal certificate cannot issue cooperatives' seal certificates."""
    if identity.can_issue:
        return None
    return (f"Сертификат печати оператора ({identity.certificate_path}) создан до печатей кооперативов: документы "
            "оператора он запечатывает, но выдавать сертификаты печати кооперативам не может. Замените его — README, "
            "«Печать, опубликованный отпечаток и его замена» (прежний отпечаток оставьте в PORTAL_SEAL_SHA256).")


@main.command("create-staff")
@click.argument("email")
@click.option("--password", default=None, help="Пароль (если не указан — будет запрошен)")
def create_staff(email: str, password: str | None) -> None:
    """Создать сотрудника (или сменить пароль существующему)."""
    from portal import db
    from portal.staff.service import create_staff as create

    if password is None:
        password = click.prompt("Пароль", hide_input=True, confirmation_prompt="Повторите пароль")
    settings = _settings()

    async def run() -> int:
        db.configure_database(settings)
        await db.start(settings)
        try:
            await db.migrate()
            return await create(email, password)
        finally:
            await db.stop(settings)

    try:
        staff_id = asyncio.run(run())
    except ValueError as exc:
        click.echo(f"Ошибка: {exc}", err=True)
        sys.exit(1)
    click.echo(f"Сотрудник {email} создан (id {staff_id}).")


@main.command()
def worker() -> None:
    """Фоновые задачи, пока процесс не остановят: письма из очереди (outbox), проверка DNS доменов кооперативов,
    развёртывание их сайтов, очистка устаревших записей."""
    from portal import db
    from portal.mail.service import run_sender
    from portal.accounts import offer
    from portal.sessions.store import delete_expired, run_housekeeping

    settings = _settings()
    if not settings.smtp_url:
        click.echo("PORTAL_SMTP_URL не задан: письма остаются в очереди / mail stays in the outbox", err=True)

    async def run() -> None:
        db.configure_database(settings)
        await db.start(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            # Redis expires its own keys; the database keeps what the worker cleans up.
            tasks = [offer.delete_stale_pending] + ([] if settings.redis_url else [delete_expired])
            from portal.connection.background import run_connections

            await asyncio.gather(run_sender(settings, stop), run_housekeeping(stop, tasks),
                                 run_connections(settings, stop))
        finally:
            await db.stop(settings)

    asyncio.run(run())


def published_seal_fingerprints(options: tuple[str, ...], environ, data_dir: Path) -> list[str]:
    """The operator's seal certificates a verification accepts: given with --seal-sha256, published in
    PORTAL_SEAL_SHA256 (comma-separated: the current one and those it replaced), and this installation's own."""
    from portal.documents.seal import certificate_sha256_in
    from portal.settings import parse_seal_fingerprints

    own = certificate_sha256_in(data_dir)
    return list(parse_seal_fingerprints(*options, environ.get("PORTAL_SEAL_SHA256", ""), own or ""))


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--seal-sha256", "seal_sha256", multiple=True,
              help="SHA-256 сертификата печати оператора, опубликованный на /verify и в документации (можно "
                   "несколько; по умолчанию — PORTAL_SEAL_SHA256 и сертификат из PORTAL_DATA_DIR/seal)")
def verify(file: Path, seal_sha256: tuple[str, ...]) -> None:
    """Проверить подписанный PDF без сети: вложения, хеш, каждую подпись, печать оператора.

    Печать сверяется с опубликованным отпечатком сертификата оператора: принимается печать этим сертификатом
    или сертификатом кооператива, который он выдал. Без отпечатка проверка не проходит (код 3): печать,
    сделанная любым другим сертификатом, ничего не доказывает. Коды: 0 — действителен, 1 — недействителен,
    2 — файл не прочитан или отпечаток в неверном формате, 3 — неизвестен сертификат печати оператора.
    """
    import os

    from portal.documents.verify import verify_pdf

    try:
        pinned = published_seal_fingerprints(seal_sha256, os.environ,
                                             Path(os.environ.get("PORTAL_DATA_DIR", "var")))
    except SettingsError:
        click.echo("НЕ ПРОВЕРЕН: отпечаток сертификата — 64 шестнадцатеричных символа (SHA-256)", err=True)
        sys.exit(2)
    try:
        content = file.read_bytes()
    except OSError as exc:
        click.echo(f"НЕДЕЙСТВИТЕЛЕН: файл не прочитан ({exc.strerror})", err=True)
        sys.exit(2)
    if not pinned:
        click.echo("НЕ ПРОВЕРЕН: неизвестен сертификат печати оператора. Укажите его отпечаток, опубликованный "
                   "на странице /verify портала и в документации: --seal-sha256 … или PORTAL_SEAL_SHA256=…", err=True)
        sys.exit(3)
    result = verify_pdf(content, seal_certificates=pinned)
    if not result.valid:
        click.echo(f"НЕДЕЙСТВИТЕЛЕН: {result.reason}", err=True)
        sys.exit(1)
    click.echo(f"ДЕЙСТВИТЕЛЕН: {result.reason}")
    click.echo(f"Хеш документа: {result.document_hash}")
    seal = result.seal
    if seal is not None and result.seal_trust == "issuer":
        click.echo(f"Печать: {seal.signer}, сертификат печати (SHA-256 {seal.certificate_sha256}) выдан сертификатом "
                   f"оператора {seal.issuer}, сверенным с опубликованным (SHA-256 {seal.issuer_sha256})")
    elif seal is not None:
        click.echo(f"Печать оператора: {seal.signer}, сертификат сверен с опубликованным "
                   f"(SHA-256 {seal.certificate_sha256})")
    for s in result.signers:
        click.echo(f"Подпись {s.n}: {s.full_name} ({s.role}), {s.email}, {s.signed_at}")
        click.echo(f"  ключ {s.key_fingerprint}: {s.key_status}")


@main.command()
def docs() -> None:
    """Собрать сайт документации (MkDocs, --strict)."""
    from portal import docs_site

    settings = _settings()
    docs_site.build(settings.site_dir, tariff=settings.tariff, base_url=settings.base_url,
                    seal_sha256=docs_site.seal_fingerprints(settings.seal_sha256, settings.data_dir))
    click.echo(f"Документация собрана в {settings.site_dir}")
