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

-- The attempt history lives in its own string key: as a hash field it would exceed the compact
-- listpack encoding's value limit (64 bytes) and the whole hash would grow about sevenfold.
local function write_history(key, history)
  if history == '' then
    redis.call('DEL', key)
  else
    redis.call('SET', key, history)
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

-- Multi-valued index hashes map a value (contact number, call id) to space-separated callback ids.
local function hash_index_add(key, value, id)
  local ids = redis.call('HGET', key, value)
  if not ids then
    redis.call('HSET', key, value, id)
  elseif not string.find(' ' .. ids .. ' ', ' ' .. id .. ' ', 1, true) then
    redis.call('HSET', key, value, ids .. ' ' .. id)
  end
end

local function hash_index_remove(key, value, id)
  local ids = redis.call('HGET', key, value)
  if not ids then
    return
  end
  local kept = {}
  for other in string.gmatch(ids, '%S+') do
    if other ~= id then
      kept[#kept + 1] = other
    end
  end
  if #kept == 0 then
    redis.call('HDEL', key, value)
  else
    redis.call('HSET', key, value, table.concat(kept, ' '))
  end
end

-- Apply index changes for callback `id`, encoded as: count, then (op, key, value) triples; op is
-- sadd|srem (a set of ids; value is the id) or hadd|hrem (an index hash; value is the indexed value).
local function apply_index_ops(pos, id)
  local count = tonumber(ARGV[pos])
  pos = pos + 1
  for _ = 1, count do
    local op, key, value = ARGV[pos], ARGV[pos + 1], ARGV[pos + 2]
    if op == 'sadd' then
      redis.call('SADD', key, value)
    elseif op == 'srem' then
      redis.call('SREM', key, value)
    elseif op == 'hadd' then
      hash_index_add(key, value, id)
    else
      hash_index_remove(key, value, id)
    end
    pos = pos + 3
  end
  return pos
end

-- The due-set score of a stored callback: its next_at, else its due_at (codec microseconds -> ms).
-- `fields` names the two hash fields, as "next_field due_field".
local function stored_due_ms(hash, fields)
  local next_field, due_field = string.match(fields, '^(%S+) (%S+)$')
  local micros = redis.call('HGET', hash, next_field) or redis.call('HGET', hash, due_field)
  if not micros then
    return nil
  end
  return math.floor(tonumber(micros) / 1000)
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
