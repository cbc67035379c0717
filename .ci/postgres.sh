#!/usr/bin/env bash
# Make sure the local PostgreSQL is up, and that it checks passwords for one test group of roles
# (the rest of pg_hba.conf stays as the machine has it), so the wrong-password test runs for real.
set -euo pipefail
cluster_version="$(ls /etc/postgresql | head -n1)"
hba="/etc/postgresql/${cluster_version}/main/pg_hba.conf"
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  pg_ctlcluster --skip-systemctl-redirect "$cluster_version" main start
fi
for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
pg_isready -h 127.0.0.1 -p 5432
psql -h 127.0.0.1 -U postgres -d postgres -qtAc \
  "DO \$\$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname='vs_password_checked') THEN CREATE ROLE vs_password_checked NOLOGIN; END IF; END\$\$;"
if [ -w "$hba" ] && ! grep -q "vs_password_checked" "$hba"; then
  sed -i '1i host all +vs_password_checked 127.0.0.1/32 scram-sha-256' "$hba"
  pg_ctlcluster --skip-systemctl-redirect "$cluster_version" main reload
fi
