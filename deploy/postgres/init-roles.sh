#!/bin/bash
# Least-privilege roles, run once by the postgres image on an empty data directory
# (/docker-entrypoint-initdb.d). Per service (shared/dbroles.py names them):
#   <svc>_owner    owns schema <svc>; the service's migrations run as it
#                  (DATABASE_MIGRATION_URL)
#   <svc>_runtime  what the service runs as (DATABASE_URL): USAGE on its schema and
#                  SELECT/INSERT/UPDATE/DELETE on its tables, granted by the migrations;
#                  no DDL, no other schema
# Passwords come from <SVC>_DB_OWNER_PASSWORD / <SVC>_DB_RUNTIME_PASSWORD.
set -euo pipefail

for svc in intake dispatch supervision scoring; do
  upper="${svc^^}"
  owner_var="${upper}_DB_OWNER_PASSWORD"
  runtime_var="${upper}_DB_RUNTIME_PASSWORD"
  : "${!owner_var:?set ${owner_var}}"
  : "${!runtime_var:?set ${runtime_var}}"
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v owner="${svc}_owner" -v runtime="${svc}_runtime" -v schema="${svc}" \
    -v owner_pw="${!owner_var}" -v runtime_pw="${!runtime_var}" <<'SQL'
CREATE ROLE :"owner" LOGIN PASSWORD :'owner_pw';
CREATE ROLE :"runtime" LOGIN PASSWORD :'runtime_pw';
CREATE SCHEMA :"schema" AUTHORIZATION :"owner";
REVOKE ALL ON SCHEMA :"schema" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"DBNAME" TO :"owner", :"runtime";
SQL
done
# Nobody but the owners creates anything: not in public, not a new schema.
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
SQL
