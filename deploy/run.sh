#!/usr/bin/env bash
# `make run`: the whole local stack on one machine — Neo4j (embedded Community, Bolt 7687),
# NATS with JetStream (embedded nats-server, 4222), ingestor (8080), query (8081) and
# projector (8082) — then waits for every /readyz (NATS and Neo4j answering, schema applied,
# projector and reads warmed up), prints the URLs, and stops everything on Ctrl-C. Point at
# servers you already run with NATS_URL / NEO4J_URI (then they are not started here).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
mkdir -p bin var/log

export NEO4J_URI="${NEO4J_URI:-bolt://127.0.0.1:7687}"
export NEO4J_USER="${NEO4J_USER:-neo4j}"
export NEO4J_PASSWORD="${NEO4J_PASSWORD:-engram-dev-password}"
export NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}"
start_neo4j=1; start_nats=1
[[ "${NEO4J_URI}" != "bolt://127.0.0.1:7687" ]] && start_neo4j=0
[[ "${NATS_URL}" != "nats://127.0.0.1:4222" ]] && start_nats=0

pids=()
stopping=0
cleanup() {
  ((stopping)) && return
  stopping=1
  echo
  echo "run: stopping"
  # Reverse start order: services first, then NATS, then Neo4j.
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill -TERM "${pids[i]}" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if ((start_neo4j)) && [[ "${neo4j_started_here:-0}" == 1 ]]; then deploy/neo4j/neo4j.sh stop || true; fi
  echo "run: stopped"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

echo "run: building binaries"
go build -o bin/ ./cmd/...

if ((start_neo4j)); then
  if ! deploy/neo4j/neo4j.sh status >/dev/null 2>&1; then neo4j_started_here=1; fi
  deploy/neo4j/neo4j.sh start
fi
if ((start_nats)); then
  if (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then
    echo "run: port 4222 is in use; stop that process or set NATS_URL to use it" >&2; exit 1
  fi
  bin/memctl nats -config deploy/nats/server.conf >var/log/nats.log 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do
    grep -q "nats: ready" var/log/nats.log 2>/dev/null && break
    kill -0 "${pids[-1]}" 2>/dev/null || { echo "run: NATS exited; var/log/nats.log:" >&2; tail -n 20 var/log/nats.log >&2; exit 1; }
    sleep 0.1
  done
fi

HTTP_ADDR=127.0.0.1:${INGESTOR_PORT:-8080} bin/ingestor >var/log/ingestor.log 2>&1 & pids+=($!); ingestor_pid=$!
HTTP_ADDR=127.0.0.1:${PROJECTOR_PORT:-8082} bin/projector >var/log/projector.log 2>&1 & pids+=($!); projector_pid=$!
HTTP_ADDR=127.0.0.1:${QUERY_PORT:-8081} bin/query >var/log/query.log 2>&1 & pids+=($!); query_pid=$!

# Every service starts without waiting for Neo4j and says on /readyz what it still waits for
# (NATS, neo4j, the projector's warm-up, the query service's read warm-up); the stack is up
# when all of them answer 200. A cold Neo4j on a busy machine can take minutes: wait up to
# READY_TIMEOUT seconds, showing what is awaited every 10 s.
ready_timeout="${READY_TIMEOUT:-300}"
wait_ready() { # name url log pid
  local start=$SECONDS last="" out body=""
  while ((SECONDS - start < ready_timeout)); do
    out="$(curl -sS --max-time 5 -w $'\n%{http_code}' "$2" 2>&1 || true)"
    body="${out%$'\n'*}"
    if [[ "${out##*$'\n'}" == 200 ]]; then
      echo "run: $1 ready"
      return 0
    fi
    if ! kill -0 "$4" 2>/dev/null; then
      echo "run: $1 exited; last lines of $3:" >&2
      tail -n 30 "$3" >&2 || true
      exit 1
    fi
    if ((SECONDS - start >= 10)) && [[ "$last" != $(((SECONDS - start) / 10)) ]]; then
      last=$(((SECONDS - start) / 10))
      echo "run: waiting for $1 ($((SECONDS - start))s): ${body}"
    fi
    sleep 0.5
  done
  echo "run: $1 not ready at $2 within ${ready_timeout}s (READY_TIMEOUT); last answer: ${body}; last lines of $3:" >&2
  tail -n 30 "$3" >&2 || true
  exit 1
}
wait_ready ingestor "http://127.0.0.1:${INGESTOR_PORT:-8080}/readyz" var/log/ingestor.log "$ingestor_pid"
wait_ready projector "http://127.0.0.1:${PROJECTOR_PORT:-8082}/readyz" var/log/projector.log "$projector_pid"
wait_ready query "http://127.0.0.1:${QUERY_PORT:-8081}/readyz" var/log/query.log "$query_pid"

cat <<MSG
run: Engram is ready
  ingestor   http://127.0.0.1:${INGESTOR_PORT:-8080}/v1   (health /healthz /readyz, OpenAPI /v1/openapi.yaml)
  query      http://127.0.0.1:${QUERY_PORT:-8081}/v1   (OpenAPI /v1/openapi-query.yaml)
  projector  http://127.0.0.1:${PROJECTOR_PORT:-8082}/metrics
  NATS       ${NATS_URL}   (monitoring http://127.0.0.1:8222 when started here)
  Neo4j      ${NEO4J_URI}  (user ${NEO4J_USER})
  logs       var/log/*.log
Try: make demo    Stop: Ctrl-C
MSG
wait -n "${pids[@]}" || true
echo "run: a process exited; see var/log/" >&2
