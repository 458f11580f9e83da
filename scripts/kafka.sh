#!/usr/bin/env bash
# Single-node Apache Kafka (KRaft, combined broker+controller) on 127.0.0.1 for
# fundwatch's integration tests and CI. The broker jars come from Maven Central
# through Maven; no tarball, no Docker. See scripts/README.md.
#
#   scripts/kafka.sh fetch | start | stop [--wipe] | restart | status | topic NAME [PARTITIONS] [ARGS...]
set -euo pipefail

KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"
# log4j2 as shipped with that Kafka version; the slf4j 1.x binding is added so the broker logs.
KAFKA_LOG4J_VERSION="${KAFKA_LOG4J_VERSION:-2.25.5}"
KAFKA_HOME_DIR="${FUNDWATCH_KAFKA_HOME:-/var/tmp/fundwatch-kafka}"
DATA="${FUNDWATCH_KAFKA_DATA:-/var/tmp/fundwatch-kafka-data}"
HOST=127.0.0.1
START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}"
MVN="${MVN:-mvn}"
DEP_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

DIST="$KAFKA_HOME_DIR/kafka_2.13-$KAFKA_VERSION"
LIB="$DIST/lib"
PIDFILE="$DATA/kafka.pid"
LOGDIR="$DATA/logs"
LOGFILE="$LOGDIR/server.log"
OUTFILE="$LOGDIR/kafka.out"
PROPS="$DATA/server.properties"
META_DIR="$DATA/kraft-combined-logs"
MARKER="$DATA/.fundwatch-kafka-data"
# The SASL_SSL listener's throwaway CA and broker certificate, made on start when missing.
TLS_DIR="$DATA/tls"
# Test-only credentials of the SASL_SSL listener (SCRAM-SHA-512 and PLAIN).
SASL_USER="${KAFKA_SASL_USER:-fundwatch}"
SASL_PASSWORD="${KAFKA_SASL_PASSWORD:-fundwatch-test-secret}"
# Password of the broker's PKCS12 keystore: a throwaway, like the key it guards.
KEYSTORE_PASSWORD=fundwatch-test-keystore

JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"

log() { echo "kafka.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  cat <<EOF
usage: scripts/kafka.sh COMMAND
  fetch                      resolve Kafka $KAFKA_VERSION jars from Maven Central into $KAFKA_HOME_DIR
  start                      fetch if needed, format storage if needed, start the broker, wait until it answers
                             (PLAINTEXT on $HOST:\${KAFKA_PORT:-19092}, SASL_SSL on $HOST:\${KAFKA_SASL_SSL_PORT:-19094})
  stop [--wipe]              stop the broker (SIGTERM, then SIGKILL after ${STOP_TIMEOUT}s); --wipe deletes $DATA
  restart                    stop, then start (data kept)
  status                     whether the broker runs, and where (exit 0 running, 3 not running)
  topic NAME [PARTITIONS] [TopicCommand args...]
                             create a topic if it does not exist (default 4 partitions, replication 1)
EOF
}

# ---------------------------------------------------------------- helpers

need_java() {
  command -v "$JAVA" >/dev/null 2>&1 || die "java not found (Kafka $KAFKA_VERSION needs Java 17+; set JAVA_HOME)"
  local spec
  spec="$("$JAVA" -XshowSettings:properties -version 2>&1 | awk -F' = ' '/java.specification.version/ {print $2}')"
  spec="${spec%%.*}"
  [[ "$spec" =~ ^[0-9]+$ ]] || die "cannot tell the Java version of $JAVA"
  ((spec >= 17)) || die "Kafka $KAFKA_VERSION brokers need Java 17+, $JAVA is Java $spec"
}

# 127.0.0.1:PORT accepts TCP connections?
port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

bootstrap() {
  if [[ -n "${KAFKA_PORT:-}" ]]; then
    echo "$HOST:$KAFKA_PORT"
  elif [[ -s "$DATA/bootstrap" ]]; then
    cat "$DATA/bootstrap"
  else
    echo "$HOST:19092"
  fi
}

# The SASL_SSL listener's address, or nothing when it is switched off.
sasl_ssl_bootstrap() {
  if [[ -n "${KAFKA_SASL_SSL_PORT:-}" ]]; then
    [[ "$KAFKA_SASL_SSL_PORT" == off ]] || echo "$HOST:$KAFKA_SASL_SSL_PORT"
  elif [[ -f "$DATA/sasl_ssl_bootstrap" ]]; then
    cat "$DATA/sasl_ssl_bootstrap"
  else
    echo "$HOST:19094"
  fi
}

# Is PID a live (non-zombie) Kafka broker process?
is_broker_pid() {
  local pid="$1" stat="" state
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  read -r stat 2>/dev/null <"/proc/$pid/stat" || return 1
  state="${stat##*) }"
  state="${state%% *}"
  [[ -n "$state" && "$state" != Z && "$state" != X ]] || return 1
  grep -qaF 'kafka.Kafka' "/proc/$pid/cmdline" 2>/dev/null
}

# Prints the broker's pid if it runs: from the pid file, or else the process started
# with this data dir's server.properties (pid file lost).
broker_pid() {
  local pid p
  if [[ -s "$PIDFILE" ]]; then
    pid="$(cat "$PIDFILE")"
    if is_broker_pid "$pid"; then echo "$pid"; return 0; fi
  fi
  for p in $(grep -laF -- "$PROPS" /proc/[0-9]*/cmdline 2>/dev/null || true); do
    pid="${p#/proc/}"
    pid="${pid%/cmdline}"
    if [[ "$pid" != "$$" ]] && is_broker_pid "$pid"; then
      echo "$pid"
      return 0
    fi
  done
  return 1
}

# Runs a Kafka tool class (TopicCommand, StorageTool, ...) with the fetched jars.
tool() {
  local cls="$1"
  shift
  "$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$DIST/tools-log4j2.properties" \
    -cp "$LIB/*" "$cls" "$@"
}

# Byte sizes of the log files when this start began: dump_logs shows only what came after.
MARK_OUT=0
MARK_LOG=0
mark_logs() {
  MARK_OUT="$(stat -c %s "$OUTFILE" 2>/dev/null || echo 0)"
  MARK_LOG="$(stat -c %s "$LOGFILE" 2>/dev/null || echo 0)"
}

dump_logs() {
  local f mark size
  for f in "$OUTFILE" "$LOGFILE"; do
    mark="$MARK_OUT"
    [[ "$f" == "$LOGFILE" ]] && mark="$MARK_LOG"
    size="$(stat -c %s "$f" 2>/dev/null || echo 0)"
    ((size < mark)) && mark=0 # rolled over
    if ((size > mark)); then
      log "---- $f (last 40 lines of this start) ----"
      tail -c +"$((mark + 1))" "$f" | tail -n 40 >&2
    fi
  done
}

# ---------------------------------------------------------------- fetch

write_pom() {
  cat <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- generated by fundwatch scripts/kafka.sh: the runtime classpath of a Kafka broker -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>fundwatch.local</groupId>
  <artifactId>kafka-broker-classpath</artifactId>
  <version>$KAFKA_VERSION</version>
  <packaging>pom</packaging>
  <dependencies>
    <!-- kafka.Kafka, kafka.tools.StorageTool; pulls server, metadata, raft, storage and the
         group/transaction/share coordinators as runtime dependencies -->
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <!-- org.apache.kafka.tools.TopicCommand and friends; Connect is not needed for them -->
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>$KAFKA_VERSION</version>
      <exclusions>
        <exclusion><groupId>org.apache.kafka</groupId><artifactId>connect-runtime</artifactId></exclusion>
      </exclusions>
    </dependency>
    <!-- logging: Kafka logs through slf4j 1.x; bind it to log4j2 as the Kafka distribution does -->
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-api</artifactId>
      <version>$KAFKA_LOG4J_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>$KAFKA_LOG4J_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>$KAFKA_LOG4J_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
}

write_tools_log4j() {
  local tmp
  tmp="$(mktemp "$DIST/.tools-log4j2.XXXXXX")"
  cat >"$tmp" <<'EOF'
# generated by scripts/kafka.sh: command-line tools log warnings to stderr
status = error
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stderr.ref = STDERR
EOF
  mv -f "$tmp" "$DIST/tools-log4j2.properties"
}

fetch_is_done() {
  local want
  want="$(write_pom | sha256sum | cut -d' ' -f1)"
  [[ -f "$DIST/.complete" && "$(cat "$DIST/.complete")" == "$want" ]] &&
    [[ -f "$LIB/kafka_2.13-$KAFKA_VERSION.jar" && -f "$LIB/kafka-tools-$KAFKA_VERSION.jar" ]] &&
    [[ -f "$DIST/tools-log4j2.properties" ]]
}

cmd_fetch() {
  if fetch_is_done; then
    log "Kafka $KAFKA_VERSION already fetched ($LIB)"
    return 0
  fi
  mkdir -p "$DIST"
  (
    # one fetch at a time per version (parallel CI jobs on the same machine)
    flock -w 600 9 || die "timed out waiting for another fetch of Kafka $KAFKA_VERSION"
    if fetch_is_done; then exit 0; fi
    command -v "$MVN" >/dev/null 2>&1 || die "Maven ($MVN) is needed to fetch Kafka from Maven Central"
    log "fetching Kafka $KAFKA_VERSION from Maven Central into $DIST ..."
    write_pom >"$DIST/pom.xml"
    rm -rf "$LIB.tmp"
    if ! "$MVN" -B -q -f "$DIST/pom.xml" "$DEP_PLUGIN:copy-dependencies" \
      -DincludeScope=runtime -DoutputDirectory="$LIB.tmp" >"$DIST/fetch.log" 2>&1; then
      tail -n 30 "$DIST/fetch.log" >&2
      die "Maven could not resolve Kafka $KAFKA_VERSION (full log: $DIST/fetch.log)"
    fi
    [[ -f "$LIB.tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] || die "kafka_2.13-$KAFKA_VERSION.jar missing after fetch"
    rm -rf "$LIB"
    mv "$LIB.tmp" "$LIB"
    write_tools_log4j
    write_pom | sha256sum | cut -d' ' -f1 >"$DIST/.complete"
    log "fetched $(find "$LIB" -name '*.jar' | wc -l) jars ($(du -sh "$LIB" | cut -f1)) into $LIB"
  ) 9>"$DIST/.lock"
}

# ---------------------------------------------------------------- start

# A throwaway CA and a broker certificate for 127.0.0.1 (SAN IP:127.0.0.1, DNS:localhost),
# made once per data dir (again after stop --wipe). Clients verify the broker against
# $TLS_DIR/ca.pem with hostname verification on. The CA key is deleted once it has signed.
ensure_tls() {
  [[ -s "$TLS_DIR/ca.pem" && -s "$TLS_DIR/broker.p12" ]] && return 0
  command -v openssl >/dev/null 2>&1 ||
    die "openssl is needed for the SASL_SSL listener's certificates (KAFKA_SASL_SSL_PORT=off goes without)"
  local tmp="$TLS_DIR.tmp"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  # Chained with &&: `set -e` does not apply inside an `if` condition.
  # EC keys: made in milliseconds, unlike RSA, so a wiped data dir starts as fast as before.
  if ! (
    cd "$tmp" &&
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
        -keyout ca.key -out ca.pem -subj "/CN=fundwatch test CA $(date +%s)" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign &&
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout broker.key -out broker.csr -subj "/CN=$HOST" &&
      printf '%s\n' basicConstraints=CA:FALSE keyUsage=critical,digitalSignature \
        extendedKeyUsage=serverAuth "subjectAltName=IP:$HOST,DNS:localhost" >broker.ext &&
      openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
        -extfile broker.ext -out broker.pem &&
      openssl pkcs12 -export -in broker.pem -inkey broker.key -certfile ca.pem -name broker \
        -passout "pass:$KEYSTORE_PASSWORD" -out broker.p12 &&
      rm -f ca.key ca.srl broker.csr broker.ext broker.key
  ) >"$DATA/tls.log" 2>&1; then
    cat "$DATA/tls.log" >&2
    die "could not make the SASL_SSL listener's certificates (log: $DATA/tls.log)"
  fi
  rm -rf "$TLS_DIR"
  mv "$tmp" "$TLS_DIR"
  log "made a throwaway CA and broker certificate in $TLS_DIR (clients: ssl.ca.location=$TLS_DIR/ca.pem)"
}

# What the scram-user file records: which user and password the metadata log holds.
scram_stamp() { printf '%s:%s' "$SASL_USER" "$(printf '%s' "$SASL_PASSWORD" | sha256sum | cut -d' ' -f1)"; }

check_sasl_credentials() {
  # They go into a JAAS line and a --add-scram spec unquoted: keep them plain.
  [[ "$SASL_USER" =~ ^[A-Za-z0-9._-]+$ ]] || die "KAFKA_SASL_USER may only hold letters, digits, '.', '_', '-'"
  [[ "$SASL_PASSWORD" =~ ^[A-Za-z0-9._-]+$ ]] || die "KAFKA_SASL_PASSWORD may only hold letters, digits, '.', '_', '-'"
}

# The SCRAM credential is written into the metadata log at format time; a data dir formatted
# before (or with other credentials) gets it through the running broker instead.
# Not fatal: the broker is up and PLAINTEXT (and PLAIN logins) work without it.
ensure_scram_user() {
  local port="$1" out
  [[ -f "$DATA/scram-user" && "$(cat "$DATA/scram-user")" == "$(scram_stamp)" ]] && return 0
  log "adding SCRAM-SHA-512 user $SASL_USER"
  if out="$(tool org.apache.kafka.tools.ConfigCommand --bootstrap-server "$HOST:$port" --alter \
    --add-config "SCRAM-SHA-512=[password=$SASL_PASSWORD]" \
    --entity-type users --entity-name "$SASL_USER" 2>&1)"; then
    scram_stamp >"$DATA/scram-user"
  else
    printf '%s\n' "$out" | tail -n 20 >&2
    log "warning: could not add the SCRAM user $SASL_USER: SCRAM logins on the SASL_SSL listener will fail"
  fi
}

write_configs() {
  local port="$1" cport="$2" sport="$3"
  local listeners="PLAINTEXT://$HOST:$port,CONTROLLER://$HOST:$cport"
  local advertised="PLAINTEXT://$HOST:$port"
  local protocols="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
  if [[ -n "$sport" ]]; then
    listeners+=",SASL_SSL://$HOST:$sport"
    advertised+=",SASL_SSL://$HOST:$sport"
    protocols+=",SASL_SSL:SASL_SSL"
  fi
  cat >"$PROPS" <<EOF
# generated by scripts/kafka.sh on every start: single-node KRaft for tests, 127.0.0.1 only
process.roles=broker,controller
node.id=1
# static single-voter quorum: survives a change of ports between runs (no --standalone format)
controller.quorum.voters=1@$HOST:$cport
listeners=$listeners
advertised.listeners=$advertised
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=$protocols
log.dirs=$META_DIR

# one node: every internal topic with one replica
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
num.partitions=4

# small machine
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=16777216

# Short retention by SIZE (64 MiB a partition, 16 MiB segments), not by time: time
# retention compares against the records' own timestamps, so a replayed event stamped
# 2024 would be deleted about 30 s after the broker starts. KAFKA_RETENTION_MS sets one.
log.retention.ms=${KAFKA_RETENTION_MS:--1}
log.retention.bytes=${KAFKA_RETENTION_BYTES:-67108864}
log.segment.bytes=16777216
log.retention.check.interval.ms=60000
EOF
  if [[ -n "$sport" ]]; then
    cat >>"$PROPS" <<EOF

# SASL_SSL for clients (TLS/SASL pass-through tests): TLS with the throwaway certificate in
# $TLS_DIR, SCRAM-SHA-512 (user added at format time) or PLAIN, test-only credentials.
# No authorizer: an authenticated user may do anything. Brokers and controller stay PLAINTEXT.
listener.name.sasl_ssl.ssl.keystore.type=PKCS12
listener.name.sasl_ssl.ssl.keystore.location=$TLS_DIR/broker.p12
listener.name.sasl_ssl.ssl.keystore.password=$KEYSTORE_PASSWORD
listener.name.sasl_ssl.ssl.key.password=$KEYSTORE_PASSWORD
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
# Also global: the broker keeps SCRAM credentials in its cache only for mechanisms enabled here.
sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$SASL_USER="$SASL_PASSWORD";
EOF
  fi
  cat >"$DATA/log4j2.properties" <<EOF
# generated by scripts/kafka.sh: broker log in $LOGFILE
status = warn
appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = $LOGFILE
appender.file.filePattern = $LOGFILE.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.netclient.name = org.apache.kafka.clients.NetworkClient
logger.netclient.level = WARN
EOF
  echo "$HOST:$port" >"$DATA/bootstrap"
  if [[ -n "$sport" ]]; then
    echo "$HOST:$sport" >"$DATA/sasl_ssl_bootstrap"
  else
    rm -f "$DATA/sasl_ssl_bootstrap"
  fi
}

format_storage() {
  local sport="$1"
  [[ -f "$META_DIR/meta.properties" ]] && return 0
  local cid="${KAFKA_CLUSTER_ID:-}" scram=()
  if [[ -z "$cid" ]]; then
    cid="$(tool kafka.tools.StorageTool random-uuid | tail -n 1)"
  fi
  if [[ -n "$sport" ]]; then
    scram=(--add-scram "SCRAM-SHA-512=[name=$SASL_USER,password=$SASL_PASSWORD]")
  fi
  log "formatting $META_DIR (cluster id $cid)"
  rm -f "$DATA/scram-user"
  if ! tool kafka.tools.StorageTool format -t "$cid" -c "$PROPS" "${scram[@]}" >>"$OUTFILE" 2>&1; then
    tail -n 20 "$OUTFILE" >&2
    die "formatting the storage failed"
  fi
  if [[ -n "$sport" ]]; then scram_stamp >"$DATA/scram-user"; fi
}

# Broker answers metadata requests? kcat if installed, else the broker's own TopicCommand.
answers_metadata() {
  local bs="$1" out
  if command -v kcat >/dev/null 2>&1; then
    out="$(timeout 15 kcat -b "$bs" -L -m 5 2>/dev/null)" || return 1
    [[ "$out" == *"broker 1 at $bs"* ]]
  else
    timeout 30 "$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
      -Dlog4j2.configurationFile="$DIST/tools-log4j2.properties" -cp "$LIB/*" \
      org.apache.kafka.tools.TopicCommand --bootstrap-server "$bs" --list >/dev/null 2>&1
  fi
}

wait_ready() {
  local pid="$1" bs="$2" port="${2##*:}" sport="${3:-}" deadline=$((SECONDS + START_TIMEOUT))
  while ((SECONDS < deadline)); do
    if ! is_broker_pid "$pid"; then
      dump_logs
      die "the broker (pid $pid) exited during start-up"
    fi
    if port_open "$port" && answers_metadata "$bs" && { [[ -z "$sport" ]] || port_open "$sport"; }; then
      return 0
    fi
    sleep 1
  done
  dump_logs
  log "the broker did not answer on $bs within ${START_TIMEOUT}s: stopping it (pid $pid)"
  terminate "$pid" || true
  rm -f "$PIDFILE"
  die "Kafka did not come up within ${START_TIMEOUT}s (logs in $LOGDIR)"
}

do_start() {
  local port="${KAFKA_PORT:-19092}" cport="${KAFKA_CONTROLLER_PORT:-19093}" pid t0=$SECONDS
  local sport="${KAFKA_SASL_SSL_PORT:-19094}"
  [[ "$sport" == off ]] && sport=""
  [[ -z "$sport" ]] || check_sasl_credentials
  need_java
  cmd_fetch
  mkdir -p "$DATA"
  touch "$MARKER"
  if pid="$(broker_pid)"; then
    log "already running (pid $pid)"
    wait_ready "$pid" "$(bootstrap)"
    local ssl_bs
    ssl_bs="$(sasl_ssl_bootstrap)"
    if [[ -n "$ssl_bs" ]] && ! port_open "${ssl_bs##*:}"; then
      log "warning: no SASL_SSL listener on $ssl_bs (a broker started before it existed?): scripts/kafka.sh restart adds it"
    fi
    bootstrap
    return 0
  fi
  for p in "$port" "$cport" $sport; do
    if port_open "$p"; then
      die "$HOST:$p is already in use by another process (set KAFKA_PORT / KAFKA_CONTROLLER_PORT / KAFKA_SASL_SSL_PORT)"
    fi
  done
  if [[ -f "$META_DIR/meta.properties" && -s "$DATA/kafka-version" &&
    "$(cat "$DATA/kafka-version")" != "$KAFKA_VERSION" ]]; then
    die "$DATA was formatted by Kafka $(cat "$DATA/kafka-version"), not $KAFKA_VERSION: scripts/kafka.sh stop --wipe first"
  fi
  mkdir -p "$LOGDIR" "$META_DIR"
  echo "$KAFKA_VERSION" >"$DATA/kafka-version"
  mark_logs
  [[ -z "$sport" ]] || ensure_tls
  write_configs "$port" "$cport" "$sport"
  format_storage "$sport"
  rm -f "$PIDFILE"
  log "starting Kafka $KAFKA_VERSION on $HOST:$port (controller $HOST:$cport${sport:+, SASL_SSL $HOST:$sport}), data in $DATA"
  # New session, detached from the caller's terminal; the pid file is written by the
  # process that then becomes the JVM. fd 9 (our lock) is not inherited.
  (
    cd "$DATA"
    # shellcheck disable=SC2086,SC2016
    setsid bash -c 'echo $$ >"$0"; exec "$@"' "$PIDFILE" \
      "$JAVA" $HEAP_OPTS -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
      -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
      -Djava.awt.headless=true -Dkafka.logs.dir="$LOGDIR" \
      -Dlog4j2.configurationFile="$DATA/log4j2.properties" \
      -cp "$LIB/*" kafka.Kafka "$PROPS" </dev/null >>"$OUTFILE" 2>&1 9>&- &
  )
  local i
  for i in $(seq 50); do
    [[ -s "$PIDFILE" ]] && break
    sleep 0.1
  done
  [[ -s "$PIDFILE" ]] || { dump_logs; die "the broker process did not start"; }
  pid="$(cat "$PIDFILE")"
  wait_ready "$pid" "$HOST:$port" "$sport"
  [[ -z "$sport" ]] || ensure_scram_user "$port"
  log "broker up (pid $pid) after $((SECONDS - t0))s; log: $LOGFILE"
  [[ -z "$sport" ]] ||
    log "SASL_SSL on $HOST:$sport: CA $TLS_DIR/ca.pem, SCRAM-SHA-512 or PLAIN user $SASL_USER (test-only password)"
  echo "$HOST:$port"
}

# ---------------------------------------------------------------- stop

# SIGTERM, up to STOP_TIMEOUT seconds for a clean shutdown, then SIGKILL.
terminate() {
  local pid="$1" i
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
    is_broker_pid "$pid" || return 0
    sleep 0.1
  done
  log "still running after ${STOP_TIMEOUT}s: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    is_broker_pid "$pid" || return 0
    sleep 0.1
  done
  return 1
}

do_stop() {
  local wipe="$1" pid
  if pid="$(broker_pid)"; then
    log "stopping the broker (pid $pid)"
    terminate "$pid" || die "could not stop pid $pid"
    log "stopped"
  else
    log "not running"
  fi
  rm -f "$PIDFILE"
  if [[ "$wipe" == 1 && -e "$DATA" ]]; then
    case "$(cd "$DATA" && pwd -P)" in
      / | /var | /var/tmp | /tmp | "${HOME:-/root}") die "refusing to wipe $DATA" ;;
    esac
    if [[ ! -e "$MARKER" && -n "$(ls -A "$DATA")" ]]; then
      die "refusing to wipe $DATA: it does not look like a fundwatch Kafka data dir"
    fi
    rm -rf "$DATA"
    log "wiped $DATA"
  fi
}

do_restart() {
  do_stop 0
  do_start
}

# ---------------------------------------------------------------- commands

with_lock() {
  # start/stop/restart of one data dir never overlap; the lock file lives beside the data
  # dir so that --wipe can delete the dir while holding it.
  local lockfile="${DATA%/}.lock"
  mkdir -p "$(dirname "$lockfile")"
  exec 9>"$lockfile"
  flock -w "$((START_TIMEOUT + STOP_TIMEOUT + 60))" 9 || die "timed out waiting for $lockfile"
  "$@"
}

cmd_status() {
  local pid bs
  bs="$(bootstrap)"
  if pid="$(broker_pid)"; then
    local state="answering"
    port_open "${bs##*:}" || state="NOT accepting connections"
    echo "Kafka $KAFKA_VERSION running: pid $pid, bootstrap $bs ($state), data $DATA, log $LOGFILE"
    local ssl_bs
    ssl_bs="$(sasl_ssl_bootstrap)"
    if [[ -n "$ssl_bs" ]]; then
      if port_open "${ssl_bs##*:}"; then
        echo "SASL_SSL: bootstrap $ssl_bs, CA $TLS_DIR/ca.pem, SCRAM-SHA-512 or PLAIN user $SASL_USER"
      else
        echo "SASL_SSL: not listening on $ssl_bs"
      fi
    fi
    return 0
  fi
  echo "Kafka not running (data dir $DATA$([[ -d "$DATA" ]] || echo ', absent'))"
  return 3
}

cmd_topic() {
  local name="${1:-}" parts="${2:-4}"
  [[ -n "$name" ]] || die "usage: scripts/kafka.sh topic NAME [PARTITIONS] [TopicCommand args...]"
  [[ "$name" =~ ^[A-Za-z0-9._-]{1,249}$ ]] || die "invalid topic name: $name"
  [[ "$parts" =~ ^[1-9][0-9]*$ ]] || die "PARTITIONS must be a positive integer, got: $parts"
  shift $(($# >= 2 ? 2 : 1))
  need_java
  fetch_is_done || cmd_fetch
  local bs
  bs="$(bootstrap)"
  port_open "${bs##*:}" || die "no broker at $bs (scripts/kafka.sh start)"
  tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$bs" --create --if-not-exists \
    --topic "$name" --partitions "$parts" --replication-factor 1 "$@" ||
    die "could not create topic $name on $bs (is the broker running? scripts/kafka.sh status)"
  log "topic $name ready on $bs"
}

main() {
  local cmd="${1:-}"
  shift || true
  case "$cmd" in
    fetch) cmd_fetch ;;
    start) with_lock do_start ;;
    stop)
      case "${1:-}" in
        "") with_lock do_stop 0 ;;
        --wipe) with_lock do_stop 1 ;;
        *) die "unknown option for stop: $1" ;;
      esac
      ;;
    restart) with_lock do_restart ;;
    status) cmd_status ;;
    topic) cmd_topic "$@" ;;
    -h | --help | help) usage ;;
    *)
      usage >&2
      exit 2
      ;;
  esac
}

main "$@"
