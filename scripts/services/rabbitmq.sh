#!/usr/bin/env bash
# Starts a local RabbitMQ for Courier's tests, with the consistent-hash
# exchange plugin enabled (rabbitmq_consistent_hash_exchange: Eventuate
# Tram's topology, which broker/amqp declares with WithEventuateFormat,
# routes with it; in its own format broker/amqp hashes partition keys in
# the client), and prints the URL the tests read.
# Idempotent: safe to run when the server is already up. Needs root; works
# without an init system (the server runs detached, as the rabbitmq user).
#
#   scripts/services/rabbitmq.sh
#   export COURIER_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/
#
# Sourcing it (". scripts/services/rabbitmq.sh") also exports
# COURIER_AMQP_URL into the calling shell.
#
# It also serves AMQP over TLS on port 5671 to clients with a certificate
# the CA signed, with the files in /etc/rabbitmq/courier-tls (ca.pem,
# server.pem, server-key.pem), which the TLS tests replace with
# certificates they make before they have RabbitMQ read them again
# (rabbitmqctl eval 'ssl:clear_pem_cache().').

. "$(dirname "${BASH_SOURCE[0]}")/lib/tls.bash"

courier_rabbitmq_url=amqp://guest:guest@127.0.0.1:5672/

courier_rabbitmq_start() (
	set -euo pipefail
	plugin=rabbitmq_consistent_hash_exchange

	if [[ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ]] || ! command -v rabbitmqctl >/dev/null; then
		apt-get -o DPkg::Lock::Timeout=300 update -qq
		DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
			--no-install-recommends rabbitmq-server >/dev/null
	fi

	# The node is named after the short host name, which must resolve; fall
	# back to localhost where it does not (a fresh container, for example).
	envconf=/etc/rabbitmq/rabbitmq-env.conf
	if ! getent hosts "$(hostname -s)" >/dev/null && ! grep -q '^NODENAME=' "$envconf" 2>/dev/null; then
		echo "NODENAME=rabbit@localhost" >>"$envconf"
	fi

	# Each CLI call boots an Erlang VM (about a second of CPU), so readiness
	# is judged by the AMQP port, which opens at the very end of the boot.
	listening() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }
	node_up() { rabbitmq-diagnostics -q ping >/dev/null 2>&1; }

	# The TLS listener. The node reads its configuration file when it
	# boots: a change stops it, to be started again below.
	tlsdir=/etc/rabbitmq/courier-tls
	courier_tls_dir "$tlsdir" rabbitmq
	conf=/etc/rabbitmq/rabbitmq.conf
	cat >"$conf.new" <<CONF
listeners.tcp.default = 5672
listeners.ssl.default = 5671
ssl_options.cacertfile = $tlsdir/ca.pem
ssl_options.certfile = $tlsdir/server.pem
ssl_options.keyfile = $tlsdir/server-key.pem
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = true
CONF
	if ! cmp -s "$conf.new" "$conf" 2>/dev/null; then
		mv "$conf.new" "$conf"
		chmod 644 "$conf"
		if node_up; then
			rabbitmqctl -q shutdown >/dev/null
		fi
	else
		rm "$conf.new"
	fi

	if ! listening; then
		if ! grep -qw "$plugin" /etc/rabbitmq/enabled_plugins 2>/dev/null; then
			rabbitmq-plugins -q --offline enable "$plugin" >/dev/null
		fi
		if node_up; then
			# The node runs but its application does not (still booting,
			# or stopped with rabbitmqctl stop_app).
			rabbitmqctl -q start_app >/dev/null 2>&1 || true
		else
			mkdir -p /var/log/rabbitmq /var/lib/rabbitmq
			chown rabbitmq:rabbitmq /var/log/rabbitmq /var/lib/rabbitmq
			# Started as the packaged service unit would be: as the rabbitmq
			# user, from its home, allowed many open files. -detached
			# returns at once.
			su rabbitmq -s /bin/sh -c 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
				cd /var/lib/rabbitmq && exec /usr/lib/rabbitmq/bin/rabbitmq-server -detached'
		fi
		for _ in $(seq 1 480); do
			listening && break
			sleep 0.25
		done
		if ! listening; then
			echo "rabbitmq.sh: RabbitMQ did not open port 5672 within 2 minutes; last log lines:" >&2
			tail -n 30 /var/log/rabbitmq/*.log >&2 2>/dev/null || true
			exit 1
		fi
	fi

	# Also covers a node that was already running before the plugin was
	# enabled.
	if ! rabbitmq-plugins -q is_enabled "$plugin" >/dev/null 2>&1; then
		rabbitmq-plugins -q enable "$plugin" >/dev/null
	fi
	rabbitmq-diagnostics -q check_running >/dev/null
)

if courier_rabbitmq_start; then
	echo "COURIER_AMQP_URL=$courier_rabbitmq_url"
	if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
		export COURIER_AMQP_URL=$courier_rabbitmq_url
	fi
	unset -f courier_rabbitmq_start
	unset courier_rabbitmq_url
else
	courier_rabbitmq_status=$?
	unset -f courier_rabbitmq_start
	unset courier_rabbitmq_url
	if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
		return "$courier_rabbitmq_status"
	fi
	exit "$courier_rabbitmq_status"
fi
