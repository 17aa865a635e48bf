"""The Lua scripts behind the Redis counters (services/risk/counters.py): each call is one
script, so trimming, recording, counting and remembering an attempt's answers are one atomic
step shared by every gateway process."""

# KEYS: the counters, then (for an account) its first-seen key, kept as 'first:last seen' in ms,
# then (for an attempt) the attempt's hash: per counter key 'count:when', per first-seen key
# ('@' and its name) 'first:unknown' as the first try saw them, 'first:0' once corrected.
# ARGV: now in ms, the number of counters, how long an idle account's entry is kept (-1: no
# account), how long the attempt's hash is kept in ms (0: no attempt); then per counter a member,
# a window in ms, the age in ms below which the account counts as new (-1: always record), and
# 1 to add the member only if absent (an attempt keeps its first time). Returns the counts, the
# first-seen time (-1: new), and 1 when the store had no entry (the account taken for new).
TALLY = """
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local idle = tonumber(ARGV[3])
local seen = idle >= 0 and KEYS[n + 1] or nil
local kept_ms = tonumber(ARGV[4])
local memo = kept_ms > 0 and KEYS[#KEYS] or nil
local first = nil
local unknown = 0
local replayed = memo and seen and redis.call('HGET', memo, '@' .. seen)
if replayed then
  local at = string.find(replayed, ':', 1, true)
  local kept = tonumber(string.sub(replayed, 1, at - 1))
  if kept >= 0 then first = kept end
  unknown = tonumber(string.sub(replayed, at + 1))
elseif seen then
  local kept = redis.call('GET', seen)
  local at = kept and string.find(kept, ':', 1, true)
  if at and now - tonumber(string.sub(kept, at + 1)) < idle then
    first = tonumber(string.sub(kept, 1, at - 1))
  else
    unknown = 1
  end
  redis.call('SET', seen, string.format('%d', first or now) .. ':' .. ARGV[1], 'PX', idle)
  if memo then
    redis.call('HSET', memo, '@' .. seen, string.format('%d', first or -1) .. ':' .. unknown)
  end
end
local counts = {}
for i = 1, n do
  local key = KEYS[i]
  local base = 4 * i + 1
  local window = tonumber(ARGV[base + 1])
  local within = tonumber(ARGV[base + 2])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = nil
  local kept = memo and redis.call('HGET', memo, key)
  if kept then
    local at = string.find(kept, ':', 1, true)
    if now - tonumber(string.sub(kept, at + 1)) < window then
      count = tonumber(string.sub(kept, 1, at - 1))
    end
  end
  if count == nil then
    if within < 0 or first == nil or now - first < within then
      if ARGV[base + 3] == '1' then
        redis.call('ZADD', key, 'NX', now, ARGV[base])
      else
        redis.call('ZADD', key, now, ARGV[base])
      end
      redis.call('PEXPIRE', key, window)
    end
    count = redis.call('ZCARD', key)
    if memo then redis.call('HSET', memo, key, count .. ':' .. ARGV[1]) end
  end
  counts[i] = count
end
if memo and redis.call('PTTL', memo) < kept_ms then redis.call('PEXPIRE', memo, kept_ms) end
return {counts, first or -1, unknown}
"""

# KEYS: the new-account counters, the account's first-seen key, then (for an attempt) its hash.
# ARGV: now in ms, the number of counters, the account's first order in ms, the idle time,
# how long the attempt's hash is kept (0: no attempt), then per counter as for TALLY.
CORRECT = """
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local first = tonumber(ARGV[3])
local seen = KEYS[n + 1]
local memo = tonumber(ARGV[5]) > 0 and KEYS[n + 2] or nil
local settled = memo and redis.call('HGET', memo, '@' .. seen)
local counts = {}
if settled and string.sub(settled, -2) == ':0' then
  -- An earlier call for this attempt corrected the counters: its counts stand.
  for i = 1, n do
    local kept = redis.call('HGET', memo, KEYS[i])
    if kept then
      counts[i] = tonumber(string.sub(kept, 1, string.find(kept, ':', 1, true) - 1))
    else
      counts[i] = redis.call('ZCARD', KEYS[i])
    end
  end
  return counts
end
local kept = redis.call('GET', seen)
local at = kept and string.find(kept, ':', 1, true)
if at and tonumber(string.sub(kept, 1, at - 1)) < first then
  first = tonumber(string.sub(kept, 1, at - 1))
end
redis.call('SET', seen, string.format('%d', first) .. ':' .. ARGV[1], 'PX', ARGV[4])
for i = 1, n do
  local key = KEYS[i]
  local base = 4 * i + 2
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - tonumber(ARGV[base + 1]))
  local within = tonumber(ARGV[base + 2])
  if within >= 0 and now - first >= within then
    redis.call('ZREM', key, ARGV[base])
  end
  counts[i] = redis.call('ZCARD', key)
  if memo then redis.call('HSET', memo, key, counts[i] .. ':' .. ARGV[1]) end
end
if memo then
  redis.call('HSET', memo, '@' .. seen, ARGV[3] .. ':0')
  if redis.call('PTTL', memo) < tonumber(ARGV[5]) then redis.call('PEXPIRE', memo, ARGV[5]) end
end
return counts
"""
