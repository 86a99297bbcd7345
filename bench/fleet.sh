#!/usr/bin/env bash
# Run 200 simulated agents of both protocol generations for 60 seconds
# against a fresh server, with one package deployed to every computer, and
# print the simulator's summary and the final job states.
# Usage: bash bench/fleet.sh [AGENTS] [SECONDS]
set -euo pipefail
agents=${1:-200}
seconds=${2:-60}
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(python -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
url="http://127.0.0.1:$port/api-agent.php"
key=fleet-registration-key

python -m ocoserver --port "$port" --data-dir "$work/data" 2> "$work/server.log" &
server=$!
until python -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null; do
    sleep 0.2
done
ocoserver setting set agent-registration-key "$key" --data-dir "$work/data" > /dev/null
ocoserver setting set agent-self-registration-enabled 1 --data-dir "$work/data" > /dev/null

# One cycle registers every agent and sends its first inventory.
python -m ocoserver.simulate --url "$url" --agents "$agents" --interval 0 --cycles 1 \
    --registration-key "$key" --keys-file "$work/keys.json" > /dev/null

mkdir "$work/package"
echo "hello from the fleet package" > "$work/package/hello.txt"
package=$(ocoserver package add "$work/package" --name Hello --version 1.0 \
    --install "cat hello.txt" --data-dir "$work/data")
targets=()
for number in $(seq -f "%04g" 1 "$agents"); do
    targets+=(--computer "sim-$number")
done
ocoserver deploy --name fleet --package "$package" "${targets[@]}" --data-dir "$work/data" > /dev/null

python -m ocoserver.simulate --url "$url" --agents "$agents" --interval 5 \
    --duration "$seconds" --keys-file "$work/keys.json" --status-every 10
ocoserver job list --json --data-dir "$work/data" | python -c '
import collections, json, sys
states = collections.Counter(row["state"] for row in json.load(sys.stdin))
print("job states:", dict(states))
sys.exit(0 if set(states) == {3} else 1)'
