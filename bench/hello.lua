-- wrk script: generation 1 oco.agent.hello requests, one computer after
-- another. The computers file (one "hostname<TAB>uid<TAB>agent-key" line
-- each) is named by the COMPUTERS environment variable. done() prints one
-- JSON line for bench/run.py.

local bodies = {}
local next_index = 1

local hello = '{"jsonrpc": "2.0", "id": 1, "method": "oco.agent.hello", '
  .. '"params": {"uid": "%s", "hostname": "%s", "agent-key": "%s", '
  .. '"data": {"agent_version": "1.1.6", "networks": [{"addr": "10.0.0.2", '
  .. '"netmask": "255.0.0.0", "broadcast": "10.255.255.255", '
  .. '"mac": "02:00:00:00:00:02", "interface": "eth0"}], '
  .. '"services": null, "uptime": 3223.01}}}'

local thread_count = 0

function setup(thread)
  thread:set("thread_number", thread_count)
  thread_count = thread_count + 1
end

function init(args)
  for line in io.lines(os.getenv("COMPUTERS")) do
    local hostname, uid, key = line:match("([^\t]+)\t([^\t]*)\t([^\t]+)")
    bodies[#bodies + 1] = string.format(hello, uid, hostname, key)
  end
  -- Threads start at different computers so that they do not move in step.
  next_index = thread_number * 997
end

function request()
  next_index = next_index % #bodies + 1
  return wrk.format("POST", nil, {["content-type"] = "application/json"},
                    bodies[next_index])
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'JSON {"requests": %d, "duration_us": %d, "bytes": %d, '
    .. '"connect_errors": %d, "read_errors": %d, "write_errors": %d, '
    .. '"status_errors": %d, "timeouts": %d, "p50_us": %d, "p99_us": %d, '
    .. '"max_us": %d}\n',
    summary.requests, summary.duration, summary.bytes, errors.connect,
    errors.read, errors.write, errors.status, errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
