-- wrk script for bench/wrk.py: POSTs one GraphQL request on every connection and counts the
-- answers that are not 200 or whose `data` differs from the expected one. An answer is
-- `{"data":<expected data>` followed by `}` or by `,"extensions":...` (the gateway's cost):
-- an `errors` entry, a different `data` or another status all count as a mismatch.

local function read(path)
  local file = assert(io.open(path, "rb"))
  local text = file:read("*a")
  file:close()
  return text
end

wrk.method = "POST"
wrk.body = read(os.getenv("QUANYI_BENCH_BODY"))
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"

local prefix = '{"data":' .. read(os.getenv("QUANYI_BENCH_DATA"))
local extensions = ',"extensions":'
mismatches = 0
first_mismatch = ""

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function response(status, headers, body)
  local same = status == 200 and body:sub(1, #prefix) == prefix
  if same then
    local rest = body:sub(#prefix + 1, #prefix + #extensions)
    same = rest == "}" or rest == extensions
  end
  if not same then
    mismatches = mismatches + 1
    if first_mismatch == "" then
      first_mismatch = status .. ": " .. body:sub(1, 300)
    end
  end
end

function done(summary, latency, requests)
  local failed, first = 0, ""
  for _, thread in ipairs(threads) do
    failed = failed + thread:get("mismatches")
    if first == "" then
      first = thread:get("first_mismatch")
    end
  end
  local errors = summary.errors
  io.write(string.format(
    'QUANYI {"requests": %d, "duration_us": %d, "mismatches": %d, "socket_errors": %d, '
      .. '"p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, failed,
    errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50), latency:percentile(99)))
  io.write("QUANYI-FIRST " .. first:gsub("\n", " ") .. "\n")
end
