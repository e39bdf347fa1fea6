#!/usr/bin/env bash
# Starts a local PostgreSQL 15 for Courier's tests, configured for logical
# replication, with a role and database "courier" (password "courier").
# Idempotent: safe to run when the server is already up.
#
# It also serves TLS on the same port, with the files in
# /etc/postgresql/15/main/courier-tls (ca.pem, server.pem, server-key.pem),
# which the TLS tests replace with certificates they make before they
# reload the server (pg_reload_conf, which the role courier may call); the
# role courier_tls logs in, and replicates, with a client certificate
# only (common name courier_tls), over TLS only.
#
#   scripts/services/postgres.sh
#   export COURIER_POSTGRES_URL=postgres://courier:courier@127.0.0.1:5432/courier?sslmode=disable
set -euo pipefail
. "$(dirname "$0")/lib/tls.bash"

version=15
if ! command -v pg_ctlcluster >/dev/null || [[ ! -x /usr/lib/postgresql/$version/bin/postgres ]]; then
	apt-get -o DPkg::Lock::Timeout=300 update -qq
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq "postgresql-$version" >/dev/null
fi
if ! pg_lsclusters -h | grep -q "^$version main"; then
	pg_createcluster "$version" main >/dev/null
fi

conf=/etc/postgresql/$version/main/conf.d/courier.conf
mkdir -p "$(dirname "$conf")"
cat >"$conf.new" <<'CONF'
listen_addresses = '127.0.0.1'
port = 5432
wal_level = logical
max_replication_slots = 20
max_wal_senders = 20
max_connections = 200
CONF
if ! cmp -s "$conf.new" "$conf" 2>/dev/null; then
	mv "$conf.new" "$conf"
	pg_ctlcluster "$version" main stop >/dev/null 2>&1 || true
else
	rm "$conf.new"
fi

# TLS settings reload without a restart.
tlsdir=/etc/postgresql/$version/main/courier-tls
courier_tls_dir "$tlsdir" postgres
tlsconf=/etc/postgresql/$version/main/conf.d/courier-tls.conf
cat >"$tlsconf.new" <<CONF
ssl = on
ssl_cert_file = '$tlsdir/server.pem'
ssl_key_file = '$tlsdir/server-key.pem'
ssl_ca_file = '$tlsdir/ca.pem'
CONF
reload=0
if ! cmp -s "$tlsconf.new" "$tlsconf" 2>/dev/null; then
	mv "$tlsconf.new" "$tlsconf"
	reload=1
else
	rm "$tlsconf.new"
fi

hba=/etc/postgresql/$version/main/pg_hba.conf
if ! grep -q "courier replication" "$hba"; then
	echo "host replication courier 127.0.0.1/32 scram-sha-256 # courier replication" >>"$hba"
	reload=1
fi
# First match wins: the certificate-only lines go first.
if ! grep -q "courier tls" "$hba"; then
	sed -i '1i hostssl all courier_tls 127.0.0.1/32 cert # courier tls\nhostssl replication courier_tls 127.0.0.1/32 cert # courier tls' "$hba"
	reload=1
fi
if [[ $reload == 1 ]]; then
	pg_ctlcluster "$version" main reload >/dev/null 2>&1 || true
fi

if ! pg_lsclusters -h | grep "^$version main" | grep -q online; then
	pg_ctlcluster "$version" main start
fi
for _ in $(seq 1 60); do
	pg_isready -q -h 127.0.0.1 -p 5432 && break
	sleep 0.5
done
pg_isready -h 127.0.0.1 -p 5432

su postgres -c "psql -q -v ON_ERROR_STOP=1" <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'courier') THEN
    CREATE ROLE courier LOGIN REPLICATION PASSWORD 'courier';
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'courier_tls') THEN
    CREATE ROLE courier_tls LOGIN REPLICATION IN ROLE courier;
  END IF;
END $$;
SELECT 'CREATE DATABASE courier OWNER courier' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'courier')\gexec
\c courier
GRANT EXECUTE ON FUNCTION pg_reload_conf() TO courier;
SQL
echo "COURIER_POSTGRES_URL=postgres://courier:courier@127.0.0.1:5432/courier?sslmode=disable"
