#!/usr/bin/env bash
# Make sure the local PostgreSQL is up and the test database exists; print its admin URL.
# Prints nothing (and exits 0) where no PostgreSQL is installed: the suite then reports its
# PostgreSQL half as NOT RUN instead of passing it.
set -euo pipefail
host=127.0.0.1 port=5432 user=${PGUSER:-postgres} database=stockcast_test

command -v pg_isready >/dev/null || exit 0
if ! pg_isready -q -h "$host" -p "$port"; then
  if [[ -d /etc/postgresql ]] && command -v pg_ctlcluster >/dev/null; then
    echo "==> starting PostgreSQL" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start >&2 || true
  fi
  for _ in $(seq 1 30); do pg_isready -q -h "$host" -p "$port" && break; sleep 1; done
fi
pg_isready -q -h "$host" -p "$port" || { echo "PostgreSQL at $host:$port is not answering" >&2; exit 1; }
if ! psql -h "$host" -p "$port" -U "$user" -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$database'" | grep -q 1; then
  psql -h "$host" -p "$port" -U "$user" -d postgres -qc "CREATE DATABASE $database" >&2
fi
echo "postgresql://$user@$host:$port/$database"
