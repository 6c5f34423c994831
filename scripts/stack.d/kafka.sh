# scripts/stack.d/kafka.sh: Apache Kafka, KRaft.
# Part of scripts/stack (sourced by it, not run on its own): see the driver for what each part is.
# shellcheck shell=bash

K_DIR="$STACK/kafka"
K_LIBS="$K_DIR/libs"
K_DATA="$K_DIR/data"
K_LOGS="$K_DIR/logs"
K_CONF="$K_DIR/server.properties"
K_PID="$K_DIR/kafka.pid"
# Fixed KRaft cluster id (base64url of the 16 bytes "streamctl-local!"); storage is formatted once.
K_CLUSTER_ID=c3RyZWFtY3RsLWxvY2FsIQ
K_MAIN=kafka.Kafka
K_STORAGE_TOOL=kafka.tools.StorageTool

k_stamp() { echo "$KAFKA_VERSION $(sha1sum <"$SCRIPTS/kafka/pom.xml" | cut -c1-40)"; }

install_kafka() {
  [[ -f $K_LIBS/.stamp && $(cat "$K_LIBS/.stamp") == "$(k_stamp)" ]] && return 0
  mkdir -p "$K_LOGS" "$CACHE/m2"
  local mlog="$K_LOGS/mvn.log"
  say "kafka: resolving Kafka $KAFKA_VERSION jars from Maven Central (log: $(rel "$mlog"))"
  rm -rf "$K_LIBS.tmp"
  mvn -B -q -f "$SCRIPTS/kafka/pom.xml" -Dmaven.repo.local="$CACHE/m2" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DoutputDirectory="$K_LIBS.tmp" -DincludeScope=runtime >"$mlog" 2>&1 ||
    { fail kafka "$mlog" "mvn dependency:copy-dependencies failed"; return 1; }
  k_stamp >"$K_LIBS.tmp/.stamp"
  rm -rf "$K_LIBS" && mv "$K_LIBS.tmp" "$K_LIBS"
}

k_running() { pid_is "$(read_pid "$K_PID")" "$K_CONF"; }
k_started_count() { cat "$K_LOGS"/server.log* 2>/dev/null | grep -c 'Kafka Server started'; }
k_ready() { port_open "$KAFKA_PORT" && (($(k_started_count) > K_STARTED_BEFORE)); }
k_where() { echo "127.0.0.1:$KAFKA_PORT (controller 127.0.0.1:$KAFKA_CONTROLLER_PORT) Kafka $KAFKA_VERSION KRaft"; }

up_kafka() {
  if k_running; then
    result kafka "up (already running)" "$(k_where)"
    return 0
  fi
  install_kafka || return 1
  port_busy_check kafka "$KAFKA_PORT" || return 1
  port_busy_check kafka "$KAFKA_CONTROLLER_PORT" || return 1
  mkdir -p "$K_DATA" "$K_LOGS"
  sed -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" -e "s|@KAFKA_CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
    -e "s|@KAFKA_DATA@|$K_DATA|g" "$SCRIPTS/kafka/server.properties.in" >"$K_CONF"
  # shellcheck disable=SC2206  # KAFKA_HEAP_OPTS is a list of JVM flags, split on purpose
  local jvm=(java ${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m} -XX:+UseG1GC -XX:MaxGCPauseMillis=20
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$SCRIPTS/kafka/log4j2.xml"
    -Dkafka.logs.dir="$K_LOGS" -cp "$K_LIBS/*")
  if [[ ! -f $K_DATA/meta.properties ]]; then
    say "kafka: formatting storage (cluster id $K_CLUSTER_ID)"
    "${jvm[@]}" "$K_STORAGE_TOOL" format -t "$K_CLUSTER_ID" -c "$K_CONF" >"$K_LOGS/storage-format.log" 2>&1 ||
      { fail kafka "$K_LOGS/storage-format.log" "storage format failed"; return 1; }
  fi
  K_STARTED_BEFORE=$(k_started_count)
  start_detached "$K_PID" "$K_LOGS/stdout.log" "${jvm[@]}" "$K_MAIN" "$K_CONF" ||
    { fail kafka "$K_LOGS/stdout.log" "could not start java"; return 1; }
  wait_for kafka 120 "$K_LOGS/server.log" "$(read_pid "$K_PID")" "$K_CONF" k_ready || return 1
  result kafka "up (started)" "$(k_where)"
}

down_kafka() { stop_pid kafka "$K_PID" "$K_CONF" 60; }

status_kafka() {  # the status line of kafka; returns 1 when it is down
  local pid
  pid=$(read_pid "$K_PID")
  if k_running && port_open "$KAFKA_PORT"; then status_line kafka up "$pid" "$(k_where)"
  else status_line kafka down "" "127.0.0.1:$KAFKA_PORT"; return 1; fi
}
