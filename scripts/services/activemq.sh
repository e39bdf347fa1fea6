#!/usr/bin/env bash
# Starts a local Apache ActiveMQ 5 (Debian's activemq package) for
# Courier's tests, serving STOMP on 127.0.0.1:61613, and prints the URL the
# tests read.
# Idempotent: safe to run when the server is already up. Needs root; works
# without an init system (the broker runs detached, as the activemq user).
#
#   scripts/services/activemq.sh
#   export COURIER_ACTIVEMQ_URL=activemq://127.0.0.1:61613
#
# Sourcing it (". scripts/services/activemq.sh") also exports
# COURIER_ACTIVEMQ_URL into the calling shell.
#
# Debian's package ships the OpenWire, STOMP and MQTT transports but not the
# AMQP 1.0 one (ActiveMQ's activemq-amqp module and the Qpid Proton-J
# library it needs are not packaged), so Courier reaches it over STOMP 1.2.
# The instance "courier" is written here: its configuration
# (/etc/activemq/instances-available/courier/activemq.xml) adds the STOMP
# connector to Debian's default and lets the broker delete queues left empty
# and unconsumed for ten minutes (tests make many), which changes nothing
# that a running subscriber id sees.
#
# The restart tests stop and start the broker with "activemq.sh restart".

courier_activemq_url=activemq://127.0.0.1:61613

courier_activemq_start() (
	set -euo pipefail
	restart=${1:-}
	instance=courier
	confdir=/etc/activemq/instances-available/$instance
	base=/var/lib/activemq/$instance
	pidfile=/run/activemq/$instance.pid

	if [[ ! -f /usr/share/activemq/bin/activemq.jar ]] || ! command -v java >/dev/null; then
		apt-get -o DPkg::Lock::Timeout=300 update -qq
		DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
			--no-install-recommends activemq >/dev/null
	fi

	listening() { (exec 3<>/dev/tcp/127.0.0.1/61613) 2>/dev/null; }
	running() { [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
	stop() {
		if running; then
			pid=$(cat "$pidfile")
			kill "$pid"
			for _ in $(seq 1 240); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.25
			done
			if kill -0 "$pid" 2>/dev/null; then
				kill -9 "$pid"
			fi
		fi
		rm -f "$pidfile"
	}

	mkdir -p "$confdir" "$base/data" "$base/tmp" /run/activemq /var/log/activemq
	cp /etc/activemq/instances-available/main/log4j2.properties "$confdir/" 2>/dev/null || true
	cat >"$confdir/activemq.xml.new" <<'XML'
<beans xmlns="http://www.springframework.org/schema/beans"
       xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
       xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans-2.0.xsd
       http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">
  <bean class="org.springframework.beans.factory.config.PropertyPlaceholderConfigurer"/>
  <broker xmlns="http://activemq.apache.org/schema/core" useJmx="false" brokerName="courier"
          dataDirectory="${activemq.base}/data" schedulePeriodForDestinationPurge="60000">
    <destinationPolicy>
      <policyMap>
        <policyEntries>
          <policyEntry queue=">" gcInactiveDestinations="true" inactiveTimoutBeforeGC="600000"/>
        </policyEntries>
      </policyMap>
    </destinationPolicy>
    <persistenceAdapter>
      <kahaDB directory="${activemq.base}/data/kahadb"/>
    </persistenceAdapter>
    <transportConnectors>
      <transportConnector name="openwire" uri="tcp://127.0.0.1:61616"/>
      <transportConnector name="stomp" uri="stomp://127.0.0.1:61613?wireFormat.maxFrameSize=16777216"/>
    </transportConnectors>
  </broker>
</beans>
XML
	if ! cmp -s "$confdir/activemq.xml.new" "$confdir/activemq.xml" 2>/dev/null; then
		mv "$confdir/activemq.xml.new" "$confdir/activemq.xml"
		stop # it reads its configuration when it starts
	else
		rm "$confdir/activemq.xml.new"
	fi
	chown -R activemq:activemq "$base" /run/activemq /var/log/activemq
	chmod 644 "$confdir"/*

	# Debian's launcher reads an instance's options from
	# /etc/activemq/instances-enabled/<instance>/options.
	cat >"$confdir/options" <<OPTIONS
ACTIVEMQ_BASE=$base
ACTIVEMQ_CONF=$confdir
ACTIVEMQ_DATA=$base/data
ACTIVEMQ_TMP=$base/tmp
ACTIVEMQ_PIDFILE=$pidfile
JAVA_HOME=/usr/lib/jvm/default-java/
ACTIVEMQ_OPTS="-Xms256M -Xmx512M -Djava.awt.headless=true"
ACTIVEMQ_ARGS="start xbean:file:$confdir/activemq.xml"
ACTIVEMQ_OUT=/var/log/activemq/$instance.out
OPTIONS
	chmod 644 "$confdir/options"
	ln -sfn "$confdir" /etc/activemq/instances-enabled/$instance

	if [[ $restart == restart ]]; then
		stop
	fi
	if ! running; then
		if listening; then
			echo "activemq.sh: port 61613 is taken by another process" >&2
			exit 1
		fi
		# As Debian's init script starts an instance, without an init
		# system: the launcher detaches the java process and returns.
		su activemq -s /bin/sh -c "cd $base && INSTANCE=$instance exec /usr/bin/activemq start" \
			>>/var/log/activemq/$instance.launcher 2>&1
	fi
	for _ in $(seq 1 480); do
		listening && break
		sleep 0.25
	done
	if ! listening; then
		echo "activemq.sh: ActiveMQ did not open port 61613 within 2 minutes; last log lines:" >&2
		tail -n 30 /var/log/activemq/$instance.out >&2 2>/dev/null || true
		exit 1
	fi
)

if courier_activemq_start "$@"; then
	echo "COURIER_ACTIVEMQ_URL=$courier_activemq_url"
	if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
		export COURIER_ACTIVEMQ_URL=$courier_activemq_url
	fi
	unset -f courier_activemq_start
	unset courier_activemq_url
else
	courier_activemq_status=$?
	unset -f courier_activemq_start
	unset courier_activemq_url
	if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
		return "$courier_activemq_status"
	fi
	exit "$courier_activemq_status"
fi
