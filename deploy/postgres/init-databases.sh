#!/usr/bin/env bash
# PostgreSQL init script (docker-entrypoint-initdb.d): one database and one owning role per
# service, so no service can read another's tables (DESIGN §2). Runs once, on an empty volume.
# Passwords come from BBI_DB_PASSWORD_<SERVICE> (local defaults: "<service>-local").
set -euo pipefail

for service in registration training campaign metrics; do
  var="BBI_DB_PASSWORD_${service^^}"
  password="${!var:-${service}-local}"
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
       -v role="$service" -v password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"role" OWNER :"role";
REVOKE ALL ON DATABASE :"role" FROM PUBLIC;
SQL
done
