#!/usr/bin/env bash
# A local PostgreSQL for the portal: starts a server, creates the role and the database, prints the URL.
#
#   scripts/postgres-local.sh [start]   # install postgresql if missing, start, create role+db, print the URL
#   scripts/postgres-local.sh stop      # stop the server that `start` started
#
# The last (and only) line on stdout is the setting to use, e.g.
#   PORTAL_DATABASE_URL=postgresql://portal:<password>@127.0.0.1:5432/portal
# so `export "$(scripts/postgres-local.sh)" && make run` runs the portal on it.
#
# By default the server is Debian's cluster (pg_ctlcluster <version> main, the port from its config).
# No systemd is needed. With PGDATA_DIR set, a cluster of its own lives in that directory instead
# (initdb on first use; listens on 127.0.0.1 only, its socket in the data dir) — nothing of the
# system's cluster is touched:
#   PGDATA_DIR=/srv/pg-portal PGPORT=5433 scripts/postgres-local.sh
#   PGDATA_DIR=/srv/pg-portal scripts/postgres-local.sh stop
# Under root the server runs as the OS user postgres, so PGDATA_DIR must be reachable by that user.
#
# Settings (environment):
#   PGDATA_DIR          data directory of a separate cluster (unset: Debian's <version>/main)
#   PGPORT              port of that cluster (default 5432; only together with PGDATA_DIR)
#   PORTAL_DB_NAME      database (default portal)
#   PORTAL_DB_USER      role that owns it (default portal)
#   PORTAL_DB_PASSWORD  its password (default: generated once and kept in $PORTAL_DATA_DIR/postgres-password,
#                       ./var/postgres-password unless PORTAL_DATA_DIR is set — next to the portal's other secrets)
set -euo pipefail

action="${1:-start}"
case "$action" in
  start|stop) ;;
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) echo "usage: $0 [start|stop]" >&2; exit 2 ;;
esac

say() { echo "$*" >&2; }
die() { echo "postgres-local: $*" >&2; exit 1; }

db_name="${PORTAL_DB_NAME:-portal}"
db_user="${PORTAL_DB_USER:-portal}"
for ident in "$db_name" "$db_user"; do
  [[ "$ident" =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || die "имя базы или роли «$ident»: только a-z, 0-9, _"
done
custom_dir="${PGDATA_DIR:-}"
if [ -z "$custom_dir" ] && [ -n "${PGPORT:-}" ]; then
  die "PGPORT задаётся вместе с PGDATA_DIR; порт кластера Debian — в /etc/postgresql/<версия>/main/postgresql.conf"
fi
port="${PGPORT:-5432}"
[[ "$port" =~ ^[0-9]+$ ]] || die "PGPORT=$port: ожидается номер порта"

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 && SUDO=(sudo)
fi

newest_bin_dir() {
  local dirs
  dirs=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$dirs" ] && [ -x "$dirs/initdb" ] && echo "$dirs"
}

# --- the server binaries: Debian's postgresql package -------------------------------------------
bin_dir=$(newest_bin_dir || true)
if [ -z "$bin_dir" ]; then
  [ "$action" = stop ] && die "PostgreSQL не установлен: останавливать нечего"
  command -v apt-get >/dev/null 2>&1 || die "нет apt-get: установите PostgreSQL (пакет postgresql) вручную"
  say "Устанавливаю PostgreSQL (apt-get install postgresql)…"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2
  bin_dir=$(newest_bin_dir || true)
  [ -n "$bin_dir" ] || die "после установки не найден /usr/lib/postgresql/*/bin/initdb"
fi
version=$(basename "$(dirname "$bin_dir")")

# Commands of the server's OS user: postgres under root (PostgreSQL refuses to run as root), else ourselves
# for a cluster of our own, else postgres through sudo for the system's cluster.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  elif [ -n "$custom_dir" ]; then
    "$@"
  else
    sudo -u postgres "$@"
  fi
}

# --- start or stop the server -------------------------------------------------------------------
if [ -n "$custom_dir" ]; then
  mkdir -p "$(dirname "$custom_dir")"
  custom_dir="$(cd "$(dirname "$custom_dir")" && pwd)/$(basename "$custom_dir")"
  socket_dir="$custom_dir"
  pg_ctl=("$bin_dir/pg_ctl" -D "$custom_dir")
  if [ "$action" = stop ]; then
    if [ -f "$custom_dir/postmaster.pid" ] && as_pg "${pg_ctl[@]}" status >/dev/null 2>&1; then
      as_pg "${pg_ctl[@]}" -m fast -w -t 60 stop >&2
    else
      say "Сервер в $custom_dir не запущен."
    fi
    exit 0
  fi
  if [ ! -f "$custom_dir/PG_VERSION" ]; then
    mkdir -p "$custom_dir"
    if [ "$(id -u)" -eq 0 ]; then
      chown postgres:postgres "$custom_dir"
      runuser -u postgres -- test -w "$custom_dir" \
        || die "пользователь postgres не может писать в $custom_dir (закрыт один из каталогов выше)"
    fi
    chmod 700 "$custom_dir"
    say "Создаю кластер PostgreSQL $version в $custom_dir…"
    initdb=("$bin_dir/initdb" -D "$custom_dir" -U postgres --encoding=UTF8 --auth-local=trust --auth-host=scram-sha-256)
    as_pg "${initdb[@]}" --locale=C.UTF-8 >/dev/null 2>&1 || as_pg "${initdb[@]}" --locale=C >/dev/null
  fi
  if ! as_pg "${pg_ctl[@]}" status >/dev/null 2>&1; then
    say "Запускаю PostgreSQL $version на 127.0.0.1:$port (данные: $custom_dir, журнал: $custom_dir/log)…"
    as_pg "${pg_ctl[@]}" -l "$custom_dir/log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $socket_dir" start >/dev/null \
      || die "сервер не запустился; см. $custom_dir/log"
  else
    port=$(sed -n 4p "$custom_dir/postmaster.pid")
  fi
else
  cluster_line() { pg_lsclusters --no-header 2>/dev/null | awk -v v="$version" '$1 == v && $2 == "main"'; }
  if [ -z "$(cluster_line)" ]; then
    [ "$action" = stop ] && die "кластера $version/main нет: останавливать нечего"
    say "Создаю кластер PostgreSQL $version/main…"
    "${SUDO[@]}" pg_createcluster "$version" main >&2
  fi
  if [ "$action" = stop ]; then
    if cluster_line | grep -qw online; then "${SUDO[@]}" pg_ctlcluster "$version" main stop; fi
    exit 0
  fi
  if ! cluster_line | grep -qw online; then
    say "Запускаю PostgreSQL $version/main (pg_ctlcluster, без systemd)…"
    "${SUDO[@]}" pg_ctlcluster "$version" main start
  fi
  port=$(cluster_line | awk '{print $3}')
  socket_dir=/var/run/postgresql
fi

# --- the role and the database ------------------------------------------------------------------
password="${PORTAL_DB_PASSWORD:-}"
if [ -z "$password" ]; then
  password_file="${PORTAL_DATA_DIR:-var}/postgres-password"
  if [ -s "$password_file" ]; then
    password=$(tr -d '\n' <"$password_file")
  else
    mkdir -p "$(dirname "$password_file")"
    password=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
    (umask 077 && printf '%s\n' "$password" >"$password_file")
    say "Пароль роли $db_user сохранён в $password_file"
  fi
fi
[[ "$password" =~ ^[A-Za-z0-9._~-]+$ ]] || die "пароль: только буквы, цифры и . _ ~ - (он входит в URL)"

psql_su() { as_pg "$bin_dir/psql" -X -q -v ON_ERROR_STOP=1 -h "$socket_dir" -p "$port" -U postgres -d postgres "$@"; }
if [ "$(psql_su -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$db_user'")" = 1 ]; then
  psql_su -c "ALTER ROLE $db_user WITH LOGIN PASSWORD '$password'"
else
  psql_su -c "CREATE ROLE $db_user WITH LOGIN PASSWORD '$password'"
fi
if [ "$(psql_su -tAc "SELECT 1 FROM pg_database WHERE datname = '$db_name'")" != 1 ]; then
  psql_su -c "CREATE DATABASE $db_name OWNER $db_user ENCODING 'UTF8' TEMPLATE template0"
fi

url="postgresql://$db_user:$password@127.0.0.1:$port/$db_name"
say "PostgreSQL $version: база $db_name (владелец $db_user) на 127.0.0.1:$port."
say "Запуск портала на ней:  PORTAL_DATABASE_URL=$url make run"
echo "PORTAL_DATABASE_URL=$url"
