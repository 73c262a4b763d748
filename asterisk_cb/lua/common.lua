-- Shared by every script (prepended by store/scripts.py). Errors start with "ACB_<KIND>" so the store
-- can map them to typed exceptions. Times are milliseconds on the Redis server clock (TIME), never a daemon's.

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

-- The holder lets go of a callback it did not change: its lease ends and, when `due_ms` is given
-- (scheduled), it goes back to the due set.
local function let_go(due_key, leases_key, wake_channel, hash, id, due_ms)
  redis.call('ZREM', leases_key, id)
  redis.call('HDEL', hash, '_tok', '_own')
  if due_ms then
    place_due(due_key, wake_channel, id, due_ms)
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

-- A change arrives as ONE JSON argument, decoded with `change = cjson.decode(...)` (packing dozens of
-- separate arguments costs the client more than the whole script costs Redis):
--   fields  = [field, value, ...]           the callback hash: complete on create (create.lua),
--                                           only the changed fields on a change (write.lua)
--   drop    = [field, ...]                  on a change: the fields that go (back to their default)
--   history = "..." or ""                   the attempt history (its own string key); on a change
--                                           absent when it did not change
--   index   = [[op, key, value], ...]       op: sadd|srem (a set of ids, value = the id),
--                                           hadd|hrem (an index hash, value = the indexed value) or
--                                           zadd|zrem (a sorted set, value = "<score> <id>")
--   events  = [[field, value, ...], ...]    stream entries to append
local function apply_index_ops(ops, id)
  for _, op in ipairs(ops) do
    local kind, key, value = op[1], op[2], op[3]
    if kind == 'sadd' then
      redis.call('SADD', key, value)
    elseif kind == 'srem' then
      redis.call('SREM', key, value)
    elseif kind == 'hadd' then
      hash_index_add(key, value, id)
    elseif kind == 'hrem' then
      hash_index_remove(key, value, id)
    else
      local score, member = string.match(value, '^(%S+) (%S+)$')
      if kind == 'zadd' then
        redis.call('ZADD', key, score, member)
      else
        redis.call('ZREM', key, member)
      end
    end
  end
end

local function append_events(events_key, events)
  for _, fields in ipairs(events) do
    redis.call('XADD', events_key, '*', unpack(fields))
  end
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

-- Call locks (lock.lua, unlock.lua). A lock (an agent's, a contact number's: a string key) or a line (a
-- field of a line-pool hash) names the callback whose call holds it and the claim token that took it:
-- "<id> <token>". It holds while that callback's `_lk` field still names the token AND either its call
-- lives (`_live`: whoever resumes the call re-takes it, nobody else may) or that token's lease runs on
-- the server clock. So it lapses with the lease when the holder vanished before its call went live, and
-- at once when the callback's call ended (the write that ends it drops `_lk` with the record).
local function lock_holds(prefix, leases_key, holder, now)
  local id, token = string.match(holder, '^(%S+) (%S+)$')
  if not id then
    return false
  end
  local hash = prefix .. id
  if redis.call('HGET', hash, '_lk') ~= token then
    return false
  end
  if redis.call('HGET', hash, '_live') == '1' then
    return true
  end
  if redis.call('HGET', hash, '_tok') ~= token then
    return false
  end
  local expiry = tonumber(redis.call('ZSCORE', leases_key, id))
  return expiry ~= nil and expiry > now
end

-- Lines of a pool (hash: callback id -> token) held by calls other than `except_id`'s; entries that no
-- longer hold are dropped on the way.
local function lines_in_use(prefix, leases_key, pool, except_id, now)
  local entries = redis.call('HGETALL', pool)
  local used = 0
  for i = 1, #entries, 2 do
    if entries[i] ~= except_id then
      if lock_holds(prefix, leases_key, entries[i] .. ' ' .. entries[i + 1], now) then
        used = used + 1
      else
        redis.call('HDEL', pool, entries[i])
      end
    end
  end
  return used
end

-- The holder dealt with the person's change request `request_id` (request.lua), applied or refused:
-- it leaves the callback (field `_req`) and its outcome is pushed to the list the requester waits on
-- (BLPOP), which expires if nobody does.
local function take_request(hash, request_id, outcome_key, outcome, ttl)
  local pending = redis.call('HGET', hash, '_req')
  if pending and cjson.decode(pending).id == request_id then
    redis.call('HDEL', hash, '_req')
  end
  redis.call('RPUSH', outcome_key, outcome)
  redis.call('EXPIRE', outcome_key, tonumber(ttl))
end
