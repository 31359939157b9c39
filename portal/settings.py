"""Settings, read once from the environment into one typed object (SPEC §6)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from portal.pricing.tariff import Tariff, parse_rubles, tariff_from_env

REPO_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(Exception):
    """A setting is missing or wrong; the message is shown to the operator as is."""


@dataclass(frozen=True)
class OperatorRequisites:
    """The operator cooperative ПК «ВОСХОД»: requisites and fees (kopecks)."""

    name_full: str = "Потребительский кооператив «ВОСХОД»"
    name_short: str = "ПК «ВОСХОД»"
    # Sample requisites with valid checksums, for development; production sets the real ones.
    inn: str = "7701000001"
    kpp: str = "770101001"
    ogrn: str = "1027700000008"
    address: str = "г. Москва"
    email: str = "info@voskhod.coop"
    phone: str = "+70000000000"
    bank_name: str = "ПАО Сбербанк"
    bik: str = "044525225"
    corr_account: str = "30101810400000000225"
    settlement_account: str = "40703810500000000001"
    fee_entrance_org: int = 100_000
    fee_share_org: int = 300_000
    fee_entrance_ind: int = 10_000
    fee_share_ind: int = 30_000
    # Where documents are signed («г. Москва»), printed as the place next to the date.
    city: str = "г. Москва"
    # The charter the joining documents name: edition and where it is published.
    charter: str = "Устав Потребительского кооператива «ВОСХОД» (редакция № 1), опубликован на сайте кооператива"
    # Those entrusted with members' personal data (152-ФЗ ст. 6 ч. 3): "name; address; what they do", one per
    # entry, entries separated by "|" in PORTAL_OPERATOR_PROCESSORS.
    processors: tuple[tuple[str, str, str], ...] = (
        ("ООО НКО «ЮМани»", "115035, г. Москва, ул. Садовническая, д. 82, стр. 2", "приём платежей банковской картой"),
    )


def parse_processors(raw: str) -> tuple[tuple[str, str, str], ...]:
    """PORTAL_OPERATOR_PROCESSORS: «Наименование; адрес; поручение | …» → ((name, address, purpose), …)."""
    entries = []
    for item in raw.split("|"):
        if not item.strip():
            continue
        parts = tuple(" ".join(p.split()) for p in item.split(";"))
        if len(parts) != 3 or not all(parts):
            raise SettingsError(
                f"PORTAL_OPERATOR_PROCESSORS: {item.strip()!r} — нужно «наименование; адрес; поручение», "
                "записи разделяются знаком | / expected 'name; address; purpose' entries separated by |")
        entries.append(parts)
    return tuple(entries)


@dataclass(frozen=True)
class Settings:
    env: str = "dev"
    data_dir: Path = Path("var")
    database_url: str = ""
    secret_key: str = ""
    base_url: str = "http://127.0.0.1:8000"
    smtp_url: str = ""
    mail_from: str = "ПК «ВОСХОД» <noreply@voskhod.localhost>"
    staff_email: str = "staff@voskhod.localhost"
    server_ip: str = "127.0.0.1"
    server_ipv6: str = ""
    dns_resolvers: tuple[str, ...] = ()  # "ip" or "ip:port"; empty — the system's resolvers
    dns_check_seconds: float = 60.0  # how often pending domains are checked in the background
    provision_command: str = ""  # empty — the default provisioner (this portal serves the cooperative)
    operator_url: str = ""
    operator_token: str = ""
    yookassa_shop_id: str = ""
    yookassa_secret_key: str = ""
    yookassa_api_url: str = "https://api.yookassa.ru/v3"
    site_dir: Path = REPO_ROOT / "site"
    operator: OperatorRequisites = field(default_factory=OperatorRequisites)
    tariff: Tariff = field(default_factory=Tariff)
    mail_poll_seconds: float = 2.0
    access_log: bool = True
    redis_url: str = ""
    seal_sha256: tuple[str, ...] = ()  # published fingerprints of the operator's seal certificates (old ones too)
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def operator_host(self) -> str:
        """The host of PORTAL_BASE_URL: requests to it get the operator's site (SPEC §9)."""
        from urllib.parse import urlsplit

        import idna

        host = (urlsplit(self.base_url).hostname or "").lower()
        if host.isascii():
            return host
        try:  # a Cyrillic PORTAL_BASE_URL: hosts arrive in punycode
            return idna.encode(host, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            return host

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith(("postgres://", "postgresql://"))

    @property
    def sqlite_path(self) -> Path:
        if self.database_url.startswith("sqlite:///"):
            return Path(self.database_url.removeprefix("sqlite:///"))
        return self.data_dir / "portal.sqlite3"

    @property
    def secret_bytes(self) -> bytes:
        """32 bytes derived from the secret key (cookie encryption, CSRF)."""
        import hashlib

        return hashlib.sha256(self.secret_key.encode()).digest()


def _money(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return parse_rubles(name, raw)
    except ValueError as exc:
        raise SettingsError(str(exc)) from exc


def _operator_from_env(environ: Mapping[str, str]) -> OperatorRequisites:
    d = OperatorRequisites()
    text = {
        name: environ.get(f"PORTAL_OPERATOR_{name.upper()}", getattr(d, name))
        for name in (
            "name_full", "name_short", "inn", "kpp", "ogrn", "address", "email", "phone",
            "bank_name", "bik", "corr_account", "settlement_account", "city", "charter",
        )
    }
    raw_processors = environ.get("PORTAL_OPERATOR_PROCESSORS", "").strip()
    processors = parse_processors(raw_processors) if raw_processors else d.processors
    fees = {
        name: _money(environ, f"PORTAL_{name.upper()}", getattr(d, name))
        for name in ("fee_entrance_org", "fee_share_org", "fee_entrance_ind", "fee_share_ind")
    }
    return OperatorRequisites(**text, **fees, processors=processors)


def check_operator(op: OperatorRequisites) -> None:
    """The operator's requisites go into every document: in production they must pass their checksums."""
    from portal.requisites import (
        FieldError, clean_bik, clean_corr_account, clean_inn, clean_kpp, clean_ogrn, clean_settlement_account,
    )

    checks = [
        ("PORTAL_OPERATOR_INN", lambda: clean_inn(op.inn, length=10)),
        ("PORTAL_OPERATOR_OGRN", lambda: clean_ogrn(op.ogrn)),
        ("PORTAL_OPERATOR_KPP", lambda: clean_kpp(op.kpp)),
        ("PORTAL_OPERATOR_BIK", lambda: clean_bik(op.bik)),
        ("PORTAL_OPERATOR_CORR_ACCOUNT", lambda: clean_corr_account(op.corr_account, op.bik)),
        ("PORTAL_OPERATOR_SETTLEMENT_ACCOUNT", lambda: clean_settlement_account(op.settlement_account, op.bik)),
    ]
    for name, check in checks:
        try:
            check()
        except FieldError as exc:
            raise SettingsError(f"{name}: {exc}")


def _dev_secret(data_dir: Path) -> str:
    """In dev a secret is generated once and kept in the data dir."""
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    path.write_text(secret)
    path.chmod(0o600)
    return secret


def _flag(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name}: ожидается 1 или 0 / expected 1 or 0, got {raw!r}")


def _trusted_proxies(environ: Mapping[str, str]) -> tuple[str, ...]:
    """PORTAL_TRUSTED_PROXIES: addresses or networks (CIDR) whose X-Forwarded-For is believed."""
    import ipaddress

    raw = environ.get("PORTAL_TRUSTED_PROXIES", "").strip()
    if not raw:
        return Settings.trusted_proxies
    items = tuple(item.strip() for item in raw.split(",") if item.strip())
    normalised = []
    for item in items:
        try:
            network = ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise SettingsError(f"PORTAL_TRUSTED_PROXIES: {item!r} — не адрес и не сеть / not an address or CIDR")
        # The server parses strictly: 10.0.0.5/8 would be ignored there, so pass 10.0.0.0/8 (or a bare address).
        normalised.append(str(network.network_address) if network.num_addresses == 1 else str(network))
    return tuple(normalised)


def parse_seal_fingerprints(*raw: str) -> tuple[str, ...]:
    """SHA-256 fingerprints of seal certificates, comma-separated, with or without colons."""
    values = [v.strip().lower().replace(":", "") for text in raw for v in text.split(",")]
    values = [v for v in values if v]
    for value in values:
        if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
            raise SettingsError(f"PORTAL_SEAL_SHA256: {value!r} — не SHA-256 (64 шестнадцатеричных символа)")
    return tuple(dict.fromkeys(values))


def _seal_fingerprints(environ: Mapping[str, str]) -> tuple[str, ...]:
    return parse_seal_fingerprints(environ.get("PORTAL_SEAL_SHA256", ""))


def _redis_url(environ: Mapping[str, str]) -> str:
    url = environ.get("PORTAL_REDIS_URL", "").strip()
    if url and not url.startswith(("redis://", "rediss://", "unix://")):
        raise SettingsError("PORTAL_REDIS_URL: ожидается redis://host:port/0 / expected redis://host:port/0")
    return url


def _http_url(environ: Mapping[str, str], name: str, default: str) -> str:
    url = environ.get(name, "").strip().rstrip("/") or default
    if not url.startswith(("http://", "https://")) or len(url.split("://", 1)[1]) == 0:
        raise SettingsError(f"{name}: ожидается http(s)://… / expected an http(s):// URL, got {url!r}")
    return url


def _ip(environ: Mapping[str, str], name: str, default: str, version: int) -> str:
    import ipaddress

    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        address = None
    if address is None or address.version != version:
        raise SettingsError(f"{name}: {raw!r} — не IPv{version}-адрес / not an IPv{version} address")
    return str(address)


def parse_resolvers(raw: str) -> tuple[str, ...]:
    """PORTAL_DNS_RESOLVERS: «1.1.1.1, 8.8.8.8:53, [2606:4700::1111]:53» → ("1.1.1.1", "8.8.8.8:53", …)."""
    import ipaddress

    out = []
    for item in (i.strip() for i in raw.split(",")):
        if not item:
            continue
        host, port = item, "53"
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            port = rest.removeprefix(":") or "53"
        elif item.count(":") == 1:
            host, port = item.split(":")
        try:
            ipaddress.ip_address(host)
            if not 0 < int(port) < 65536:
                raise ValueError(port)
        except ValueError:
            raise SettingsError(f"PORTAL_DNS_RESOLVERS: {item!r} — ожидается адрес или адрес:порт "
                                "/ expected ip or ip:port")
        out.append(f"{host}:{int(port)}")
    return tuple(out)


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1
    if not 0 < value <= 86400:
        raise SettingsError(f"{name}: ожидается число секунд от 0 до 86400 / expected seconds, got {raw!r}")
    return value


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    environ = os.environ if environ is None else environ
    env = environ.get("PORTAL_ENV", "dev").strip() or "dev"
    if env not in ("dev", "production"):
        raise SettingsError(f"PORTAL_ENV должен быть dev или production / must be dev or production, got {env!r}")
    data_dir = Path(environ.get("PORTAL_DATA_DIR", "var")).expanduser().resolve()
    secret = environ.get("PORTAL_SECRET_KEY", "").strip()
    if not secret:
        if env == "production":
            raise SettingsError(
                "PORTAL_SECRET_KEY не задан: в production портал не запускается без секретного ключа "
                "/ PORTAL_SECRET_KEY is required in production"
            )
        secret = _dev_secret(data_dir)
    database_url = environ.get("PORTAL_DATABASE_URL", "").strip()
    if database_url and not database_url.startswith(("postgres://", "postgresql://", "sqlite:///")):
        raise SettingsError("PORTAL_DATABASE_URL: ожидается postgresql://… или sqlite:///… / expected postgresql:// or sqlite:///")
    smtp_url = environ.get("PORTAL_SMTP_URL", "").strip()
    if smtp_url and not smtp_url.startswith(("smtp://", "smtps://")):
        raise SettingsError("PORTAL_SMTP_URL: ожидается smtp://host:port / expected smtp://host:port")
    try:
        tariff = tariff_from_env(environ)
    except ValueError as exc:
        raise SettingsError(str(exc)) from exc
    operator = _operator_from_env(environ)
    if env == "production":
        check_operator(operator)
    defaults = Settings()
    port = environ.get("PORT", "8000")
    return Settings(
        env=env,
        data_dir=data_dir,
        database_url=database_url,
        secret_key=secret,
        base_url=environ.get("PORTAL_BASE_URL", f"http://127.0.0.1:{port}").rstrip("/"),
        smtp_url=smtp_url,
        mail_from=environ.get("PORTAL_MAIL_FROM", defaults.mail_from),
        staff_email=environ.get("PORTAL_STAFF_EMAIL", defaults.staff_email),
        server_ip=_ip(environ, "PORTAL_SERVER_IP", defaults.server_ip, 4),
        server_ipv6=_ip(environ, "PORTAL_SERVER_IPV6", "", 6),
        dns_resolvers=parse_resolvers(environ.get("PORTAL_DNS_RESOLVERS", "")),
        dns_check_seconds=_seconds(environ, "PORTAL_DNS_CHECK_SECONDS", defaults.dns_check_seconds),
        provision_command=environ.get("PORTAL_PROVISION_COMMAND", "").strip(),
        operator_url=_http_url(environ, "PORTAL_OPERATOR_URL", "") if environ.get("PORTAL_OPERATOR_URL", "").strip()
        else "",
        operator_token=environ.get("PORTAL_OPERATOR_TOKEN", "").strip(),
        yookassa_shop_id=environ.get("PORTAL_YOOKASSA_SHOP_ID", ""),
        yookassa_secret_key=environ.get("PORTAL_YOOKASSA_SECRET_KEY", ""),
        yookassa_api_url=_http_url(environ, "PORTAL_YOOKASSA_API_URL", defaults.yookassa_api_url),
        site_dir=Path(environ.get("PORTAL_SITE_DIR", str(defaults.site_dir))).resolve(),
        operator=operator,
        tariff=tariff,
        access_log=_flag(environ, "PORTAL_ACCESS_LOG", defaults.access_log),
        trusted_proxies=_trusted_proxies(environ),
        redis_url=_redis_url(environ),
        seal_sha256=_seal_fingerprints(environ),
    )
