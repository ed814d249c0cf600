# Sourced by scripts/test-api and scripts/test-clients: builds a small
# trained, scored world in the current directory and starts a churnguard
# server on a loopback port over it. Needs $bin (the churnguard binary).
# Sets: url, server_pid, and one key per role (ADMIN_KEY, SCORER_KEY,
# READER_KEY, also exported). The caller's EXIT trap should kill $server_pid.

random_key() { echo "$1-key-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"; }

start_api_server() {
  "$bin" generate --customers 400 --seed 11 --out co >/dev/null
  "$bin" features --data co --out f.parquet >/dev/null
  "$bin" train --data f.parquet --families logistic --registry models >/dev/null
  "$bin" score --data co --registry models --snapshot 2024-10-01 --out r --store sqlite://s.db >/dev/null
  ADMIN_KEY=$(random_key admin)
  SCORER_KEY=$(random_key scorer)
  READER_KEY=$(random_key reader)
  export ADMIN_KEY SCORER_KEY READER_KEY
  CHURNGUARD_API_KEYS="admin:$ADMIN_KEY,scorer:$SCORER_KEY,reader:$READER_KEY" \
    "$bin" serve --listen 127.0.0.1:0 --registry models --store sqlite://s.db --data co \
    > serve.out 2> serve.err &
  server_pid=$!
  for _ in $(seq 1 100); do grep -q "serving on" serve.out 2>/dev/null && break; sleep 0.1; done
  url=$(grep -o 'http://[0-9.:]*' serve.out | head -n 1)
  if [ -z "$url" ]; then
    echo "the server did not start" >&2
    cat serve.err >&2
    return 1
  fi
}
