-- wrk script for bench/flash_wrk.py: the flash sale's rush through the gateway. Sends
-- placeOrder mutations byte for byte as flash_load.order_request builds them, order n with
-- the idempotency key `<prefix>-order-<n:08d>` and a buyer of its own, one request at a time
-- per connection, until every order 0 .. orders-1 has been sent once: thread i of T sends
-- n = i, i+T, i+2T, ... Each answer is paired with its order by the X-Request-Id header the
-- gateway echoes (the request sends the idempotency key as its id), timed by CLOCK_MONOTONIC
-- (the clock of Python's time.perf_counter on Linux) and classed as flash_load.verdict_of
-- does: PLACED, OUT_OF_STOCK, or the error's text. done() writes every record to the file
-- `records`, one tab-separated line per order: n, sent, answered (empty: no answer), verdict.
--
-- Arguments after `--`, as name=value: records, orders, threads, connections, deadline (the
-- CLOCK_MONOTONIC second after which no order is sent), prefix, channel, sku, query (the
-- last three JSON strings, quotes included), top_up (1: each buyer names rechargeAccount).
-- A thread stops once its orders are answered; the last one to stop interrupts wrk's timer
-- (SIGINT to the process), so wrk exits without waiting for -d, which is only the cap.

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } quanyi_timespec;
  int clock_gettime(int clock, quanyi_timespec *now);
  int getpid(void);
  int kill(int pid, int signal);
]]
local CLOCK_MONOTONIC, SIGINT = 1, 2
local PLACED, OUT_OF_STOCK = "PLACED", "OUT_OF_STOCK"

local clock = ffi.new("quanyi_timespec")
local function now()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, clock)
  return tonumber(clock.tv_sec) + tonumber(clock.tv_nsec) * 1e-9
end

-- In the main state: the threads, numbered for their share of the orders.
local threads = {}

function setup(thread)
  thread:set("index", #threads)
  table.insert(threads, thread)
end

-- In each thread's state.
local options = {}
local head, body_head, body_lines
local next_n, step, orders, deadline, top_up, connections
local probing = false -- thread 0's first request() is wrk's check of the script, never sent
local finished = false
local outstanding = 0
-- Globals, for done() to read from the threads: the records file's path; every order sent and
-- not yet answered (idempotency key -> {n, sent}); one entry per order answered or lost.
records_path = nil
waiting = {}
numbers, sent_at, answered_at, verdicts = {}, {}, {}, {}

function init(args)
  for _, arg in pairs(args) do
    local name, value = arg:match("^([%w_]+)=(.*)$")
    if name then options[name] = value end
  end
  records_path = options.records
  orders = tonumber(options.orders)
  step = tonumber(options.threads)
  connections = math.floor(tonumber(options.connections) / step) -- as wrk shares them out
  deadline = tonumber(options.deadline)
  top_up = options.top_up == "1"
  next_n = index
  probing = index == 0
  -- The head of flash_load.order_request (load.http_post), the Content-Length and the id after it.
  head = "POST /graphql HTTP/1.1\r\nHost: " .. wrk.host .. ":" .. wrk.port
    .. "\r\nContent-Type: application/json\r\nAccept: application/json\r\nX-Request-Id: "
  body_head = '{"query":' .. options.query .. ',"operationName":"Place","variables":{"input":{"channel":'
    .. options.channel .. ',"idempotencyKey":"'
  body_lines = '","lines":[{"skuId":' .. options.sku .. ',"quantity":1}],"buyer":{"phone":"'
end

local function order(n)
  local key = string.format("%s-order-%08d", options.prefix, n)
  local phone = string.format("139%08d", n)
  local buyer = phone .. '","deviceId":"bench-' .. string.format("%d", n) .. '"'
  if top_up then
    buyer = buyer .. ',"rechargeAccount":"' .. phone .. '"'
  end
  local body = body_head .. key .. body_lines .. buyer .. "}}}}"
  return key, head .. key .. "\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body
end

local function record(n, sent, answered, verdict)
  local i = #numbers + 1
  numbers[i], sent_at[i], answered_at[i], verdicts[i] = n, sent, answered or -1, verdict
  return i
end

local function finish()
  if finished then
    return
  end
  finished = true
  wrk.thread:stop()
  -- Every thread appends a byte once done; the one that finds all T there ends the run.
  -- (A process-directed signal wakes wrk's main thread, which sleeps for -d.)
  local marker = options.records .. ".finished"
  local file = assert(io.open(marker, "ab"))
  file:write("x")
  file:close()
  file = assert(io.open(marker, "rb"))
  local threads_done = #file:read("*a")
  file:close()
  if threads_done >= step then
    ffi.C.kill(ffi.C.getpid(), SIGINT)
  end
end

local function oldest()
  local key, first
  for candidate, entry in pairs(waiting) do
    if first == nil or entry[2] < first[2] then
      key, first = candidate, entry
    end
  end
  return key, first
end

local function forget(key)
  local entry = waiting[key]
  waiting[key] = nil
  outstanding = outstanding - 1
  return entry
end

-- An outcome whose order cannot be told (a connection lost with its request, an answer
-- without its id) is given to the oldest order in flight. If that order's own answer comes
-- later, it is recorded, and the guess moves on to the next oldest: counts stay exact.
local given = {} -- idempotency key -> index of the guessed record that took its entry

local function guess(index, answered, verdict)
  local key, entry = oldest()
  if key == nil then
    if index then
      numbers[index] = -1 -- nobody left to own it: dropped
    end
    return
  end
  forget(key)
  if index then
    numbers[index], sent_at[index] = entry[1], entry[2]
  else
    index = record(entry[1], entry[2], answered, verdict)
  end
  given[key] = index
end

function request()
  if probing then
    probing = false
    local _, text = order(next_n)
    return text
  end
  -- The connection asking has nothing in flight: when this thread waits for answers on as
  -- many orders as it has connections, one of them was lost with its connection (wrk
  -- reconnects and asks again). Its order cannot be told, so the oldest is counted lost.
  while outstanding >= connections do
    guess(nil, nil, "no answer: the connection was lost")
  end
  local sent = now()
  if next_n >= orders or sent >= deadline then
    if outstanding == 0 then
      finish()
    end
    return "" -- nothing more to send on this connection: it stays idle
  end
  local n = next_n
  next_n = n + step
  local key, text = order(n)
  waiting[key] = {n, sent}
  outstanding = outstanding + 1
  return text
end

local function verdict(status, body)
  if status ~= 200 then
    return "HTTP " .. status .. ": " .. body:sub(1, 300)
  end
  if body:sub(1, 23) ~= '{"data":{"placeOrder":{' or body:find('"errors":', 1, true) then
    return "errors: " .. body:sub(1, 300)
  end
  if body:find('"order":{', 24, true) and body:find('"accessToken":"', 24, true) then
    return PLACED
  end
  if body:find('"userErrors":%[{"field":[^{}%[%]]*,"code":"OUT_OF_STOCK"}%]', 24) then
    return OUT_OF_STOCK
  end
  return "userErrors: " .. (body:match('"userErrors":(%b[])') or body:sub(1, 300))
end

function response(status, headers, body)
  local answered = now()
  local key = headers["x-request-id"] or headers["X-Request-Id"]
  local text = verdict(status, body)
  if key and waiting[key] then
    local entry = forget(key)
    record(entry[1], entry[2], answered, text)
  elseif key and given[key] then
    local index = given[key]
    given[key] = nil
    record(numbers[index], sent_at[index], answered, text)
    guess(index)
  else
    guess(nil, answered, "answer without its X-Request-Id: " .. text)
  end
  if outstanding == 0 and (next_n >= orders or answered >= deadline) then
    finish()
  end
end

function done(summary, latency, requests)
  local file = assert(io.open(threads[1]:get("records_path"), "wb"))
  for _, thread in ipairs(threads) do
    local n, sent, answered, verdict = thread:get("numbers"), thread:get("sent_at"),
      thread:get("answered_at"), thread:get("verdicts")
    for i = 1, #n do
      file:write(string.format("%d\t%.9f\t%.9f\t%s\n", n[i], sent[i], answered[i],
        (verdict[i]:gsub("[\t\r\n]", " "))))
    end
    -- Orders still in flight when wrk stopped (the cap): sent, never answered.
    for _, entry in pairs(thread:get("waiting")) do
      file:write(string.format("%d\t%.9f\t%.9f\t%s\n", entry[1], entry[2], -1,
        "no answer before wrk stopped"))
    end
  end
  file:close()
end
