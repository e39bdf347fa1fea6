# Sourced by the set-up scripts of the servers that serve TLS to Courier's
# tests (PostgreSQL, MariaDB, RabbitMQ).
#
# courier_tls_dir DIR OWNER makes DIR, a directory of TLS files the server
# reads as OWNER: ca.pem (the CA its client certificates must come from),
# server.pem and server-key.pem. Files already there are kept: the tests
# replace them with certificates they make, and reload the server. The
# first ones are a placeholder, self-signed, so that the server can start
# with TLS on.
courier_tls_dir() {
	local dir=$1 owner=$2
	if ! command -v openssl >/dev/null; then
		apt-get -o DPkg::Lock::Timeout=300 update -qq
		DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq openssl >/dev/null
	fi
	mkdir -p "$dir"
	if [[ ! -s $dir/server.pem || ! -s $dir/server-key.pem || ! -s $dir/ca.pem ]]; then
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
			-subj "/CN=courier placeholder" -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
			-keyout "$dir/server-key.pem" -out "$dir/server.pem" 2>/dev/null
		cp "$dir/server.pem" "$dir/ca.pem"
	fi
	chown -R "$owner:" "$dir"
	chmod 700 "$dir"
	chmod 600 "$dir"/*.pem
}
