-- Shared by every script (prepended by store.py). Errors start with "ACB_<KIND>" so the store can map
-- them to typed exceptions. Times are milliseconds on the Redis server clock (TIME), never a daemon's.

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function fail(kind, detail)
  return redis.error_reply('ACB_' .. kind .. ' ' .. detail)
end

-- Why a fenced write by the holder of `token` must be refused, or nil when it may proceed: the token
-- must still be the callback's current one AND its lease must not have expired on the server clock.
local function fence_error(hash, leases_key, id, token, now)
  if redis.call('HGET', hash, '_tok') ~= token then
    return fail('STALE', id .. ' token ' .. token .. ' is not the current holder')
  end
  local expiry = tonumber(redis.call('ZSCORE', leases_key, id))
  if expiry == nil or expiry <= now then
    return fail('EXPIRED', id .. ' lease of token ' .. token .. ' expired')
  end
  return nil
end

-- Put a callback in the due set; tell every scheduler when it became the earliest one.
local function place_due(due_key, wake_channel, id, due_ms)
  redis.call('ZADD', due_key, due_ms, id)
  local head = redis.call('ZRANGE', due_key, 0, 0)
  if head[1] == id then
    redis.call('PUBLISH', wake_channel, due_ms)
  end
end

-- Read `count` field/value pairs from ARGV starting at `pos`; returns the flat list and the next position.
local function read_pairs(pos)
  local count = tonumber(ARGV[pos])
  local pairs_ = {}
  for i = 1, count * 2 do
    pairs_[i] = ARGV[pos + i]
  end
  return pairs_, pos + 1 + count * 2
end

-- Apply index changes encoded as: count, then (op, key, member) triples; op is sadd|srem|zadd|zrem
-- (the zsets are lexicographic: score 0).
local function apply_index_ops(pos)
  local count = tonumber(ARGV[pos])
  pos = pos + 1
  for _ = 1, count do
    local op, key, member = ARGV[pos], ARGV[pos + 1], ARGV[pos + 2]
    if op == 'sadd' then
      redis.call('SADD', key, member)
    elseif op == 'srem' then
      redis.call('SREM', key, member)
    elseif op == 'zadd' then
      redis.call('ZADD', key, 0, member)
    else
      redis.call('ZREM', key, member)
    end
    pos = pos + 3
  end
  return pos
end

-- Append events encoded as: count, then per event a field count and its field/value pairs.
local function append_events(events_key, pos)
  local count = tonumber(ARGV[pos])
  pos = pos + 1
  for _ = 1, count do
    local fields
    fields, pos = read_pairs(pos)
    redis.call('XADD', events_key, '*', unpack(fields))
  end
  return pos
end
