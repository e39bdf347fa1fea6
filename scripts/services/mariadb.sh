#!/usr/bin/env bash
# Starts a local MariaDB for Courier's tests with the binary log in ROW
# format, and a user "courier" (password "courier") that may create
# databases and read the binary log. Idempotent.
#
# It also serves TLS on the same port, with the files in
# /etc/mysql/courier-tls (ca.pem, server.pem, server-key.pem), which the TLS
# tests replace with certificates they make before they reload them (FLUSH
# SSL); the user courier_tls (password "courier") must present a client
# certificate the CA signed (REQUIRE X509).
#
#   scripts/services/mariadb.sh
#   export COURIER_MYSQL_DSN='courier:courier@tcp(127.0.0.1:3306)/'
set -euo pipefail
. "$(dirname "$0")/lib/tls.bash"

if ! command -v mariadbd >/dev/null && ! command -v mysqld >/dev/null; then
	apt-get -o DPkg::Lock::Timeout=300 update -qq
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq mariadb-server >/dev/null
fi

conf=/etc/mysql/mariadb.conf.d/99-courier.cnf
cat >"$conf.new" <<'CONF'
[mysqld]
bind-address = 127.0.0.1
port = 3306
server_id = 1
log_bin = mysql-bin
binlog_format = ROW
binlog_row_image = FULL
max_connections = 300
max_allowed_packet = 64M
ssl_ca = /etc/mysql/courier-tls/ca.pem
ssl_cert = /etc/mysql/courier-tls/server.pem
ssl_key = /etc/mysql/courier-tls/server-key.pem
CONF
courier_tls_dir /etc/mysql/courier-tls mysql
restart=0
if ! cmp -s "$conf.new" "$conf" 2>/dev/null; then
	mv "$conf.new" "$conf"
	restart=1
else
	rm "$conf.new"
fi

running() { mariadb-admin --protocol=socket -uroot ping >/dev/null 2>&1; }
if running && [[ $restart == 1 ]]; then
	mariadb-admin --protocol=socket -uroot shutdown
fi
if ! running; then
	mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
	# No init system is assumed: run the server in the background, detached.
	(setsid mysqld_safe --user=mysql >/dev/null 2>&1 &)
fi
for _ in $(seq 1 120); do
	running && break
	sleep 0.5
done
mariadb-admin --protocol=socket -uroot ping

mariadb --protocol=socket -uroot <<'SQL'
CREATE USER IF NOT EXISTS 'courier'@'127.0.0.1' IDENTIFIED BY 'courier';
CREATE USER IF NOT EXISTS 'courier'@'localhost' IDENTIFIED BY 'courier';
GRANT ALL PRIVILEGES ON *.* TO 'courier'@'127.0.0.1';
GRANT ALL PRIVILEGES ON *.* TO 'courier'@'localhost';
CREATE USER IF NOT EXISTS 'courier_tls'@'127.0.0.1' IDENTIFIED BY 'courier' REQUIRE X509;
GRANT ALL PRIVILEGES ON *.* TO 'courier_tls'@'127.0.0.1';
CREATE DATABASE IF NOT EXISTS courier;
FLUSH PRIVILEGES;
SQL
echo "COURIER_MYSQL_DSN=courier:courier@tcp(127.0.0.1:3306)/"
