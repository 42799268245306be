#!/usr/bin/env bash
# Starts and stops the local Neo4j (embedded Community edition with Bolt, see Launcher.java).
#   deploy/neo4j/neo4j.sh build|start|stop|status
# Settings (environment, with defaults): NEO4J_BOLT_PORT=7687, NEO4J_DATA_DIR=var/neo4j,
# NEO4J_PASSWORD=engram-dev-password, NEO4J_HEAP=2g, NEO4J_PAGECACHE=512m,
# NEO4J_TX_LOG_RETENTION=512M size (transaction logs kept; Neo4j's default is 2 days),
# NEO4J_START_TIMEOUT=180 (seconds), NEO4J_INSTANCE (a name for a second server, e.g. the
# scratch database of `memctl verify`: its own pid and log file), NEO4J_JAVA_OPTS (JVM options,
# default "-Xms512m -Xmx$NEO4J_HEAP -XX:+UseG1GC" and the smaller C2 inlining below). The first
# start fetches the jars through Maven.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
export NEO4J_BOLT_HOST="${NEO4J_BOLT_HOST:-127.0.0.1}"
export NEO4J_BOLT_PORT="${NEO4J_BOLT_PORT:-7687}"
export NEO4J_DATA_DIR="${NEO4J_DATA_DIR:-$root/var/neo4j}"
export NEO4J_PASSWORD="${NEO4J_PASSWORD:-engram-dev-password}"
export NEO4J_USER="${NEO4J_USER:-neo4j}"
heap="${NEO4J_HEAP:-2g}"
timeout="${NEO4J_START_TIMEOUT:-180}"
run_dir="$root/var/run"
instance="${NEO4J_INSTANCE:+-$NEO4J_INSTANCE}"
pidfile="$run_dir/neo4j$instance.pid"
logfile="$root/var/log/neo4j$instance.log"
uri="bolt://$NEO4J_BOLT_HOST:$NEO4J_BOLT_PORT"

die() { echo "neo4j: $*" >&2; exit 1; }

running() { [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

build() {
  command -v java >/dev/null || die "java not found: install a JDK 17 or 21 (Debian: apt-get install openjdk-17-jdk-headless)"
  command -v mvn >/dev/null || die "mvn not found: install Maven (Debian: apt-get install maven)"
  local jar="deploy/neo4j/target/engram-neo4j-1.0.0.jar"
  if [[ ! -f "$jar" || deploy/neo4j/pom.xml -nt "$jar" || deploy/neo4j/src/main/java/dev/engram/neo4j/Launcher.java -nt "$jar" ]]; then
    echo "neo4j: building the launcher (first time: Maven fetches the Neo4j jars)" >&2
    (cd deploy/neo4j && mvn -q -B package -DskipTests) || die "maven build of deploy/neo4j failed (see the output above)"
  fi
}

start() {
  if [[ -n "${NEO4J_URI:-}" && "${NEO4J_URI}" != "$uri" ]]; then
    echo "neo4j: NEO4J_URI=$NEO4J_URI names another server; not starting a local one"
    go run ./cmd/memctl wait-neo4j -uri "$NEO4J_URI" -timeout 60s || die "the Neo4j at $NEO4J_URI does not answer (check NEO4J_URI, NEO4J_USER, NEO4J_PASSWORD)"
    return 0
  fi
  if running; then echo "neo4j: already running (pid $(cat "$pidfile")) on $uri"; return 0; fi
  if (exec 3<>"/dev/tcp/$NEO4J_BOLT_HOST/$NEO4J_BOLT_PORT") 2>/dev/null; then
    if go run ./cmd/memctl wait-neo4j -uri "$uri" -timeout 5s >/dev/null 2>&1; then
      echo "neo4j: a Neo4j not started by this script already answers on $uri; using it"
      return 0
    fi
    die "port $NEO4J_BOLT_HOST:$NEO4J_BOLT_PORT is already in use by another process: stop it, set NEO4J_BOLT_PORT, or point NEO4J_URI at that server and skip starting ours"
  fi
  build
  mkdir -p "$run_dir" "$(dirname "$logfile")" "$NEO4J_DATA_DIR"
  # C2 inlines less than HotSpot's defaults (levels 15 → 9, callee sizes 2500 → 1000 and 325 →
  # 100 bytecodes): on two shared cores Neo4j's compiler took a third of its CPU for tens of
  # minutes after a start; with these it settled within about 3 minutes of load, and
  # read-your-writes latency was lower in 5 of 6 same-age pairs at 500 writes/s and in 6 of 6 at
  # 2000 (docs/BENCHMARKS.md, "Issue 11, session 17").
  local jit="-XX:MaxInlineLevel=9 -XX:InlineSmallCode=1000 -XX:FreqInlineSize=100"
  # shellcheck disable=SC2086 # the options are words
  nohup java ${NEO4J_JAVA_OPTS:--Xms512m -Xmx$heap -XX:+UseG1GC $jit} \
    -cp "deploy/neo4j/target/engram-neo4j-1.0.0.jar:deploy/neo4j/target/lib/*" \
    dev.engram.neo4j.Launcher >"$logfile" 2>&1 &
  echo $! >"$pidfile"
  if ! go run ./cmd/memctl wait-neo4j -uri "$uri" -timeout "${timeout}s" -pid "$(cat "$pidfile")"; then
    echo "neo4j: last lines of $logfile:" >&2
    tail -n 30 "$logfile" >&2 || true
    stop >/dev/null 2>&1 || true
    die "not ready within ${timeout}s"
  fi
  echo "neo4j: ready on $uri (pid $(cat "$pidfile"), data $NEO4J_DATA_DIR, log $logfile)"
}

stop() {
  if ! running; then rm -f "$pidfile"; echo "neo4j: not running"; return 0; fi
  local pid; pid="$(cat "$pidfile")"
  kill "$pid"
  for _ in $(seq 1 120); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; echo "neo4j: stopped"; return 0; }
    sleep 0.5
  done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
  echo "neo4j: killed after 60s"
}

case "${1:-}" in
  build) build ;;
  start) start ;;
  stop) stop ;;
  status) if running; then echo "neo4j: running (pid $(cat "$pidfile")) on $uri"; else echo "neo4j: not running"; exit 1; fi ;;
  *) die "usage: $0 build|start|stop|status" ;;
esac
