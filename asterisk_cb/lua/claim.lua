-- Claim up to `limit` callbacks, oldest first: first those whose lease expired (their holder is gone or
-- late), then due ones. Each claim gets a new fencing token (global INCR, so tokens only grow) and a
-- lease ending `lease ms` from now on the server clock. While paused, due callbacks wait and so do
-- expired claims that never went live (they go back to the due set); live ones are still taken over,
-- because a call exists and someone must follow it.
-- KEYS: due, leases, fence, paused. ARGV: callback prefix, limit, lease ms, owner, due fields (see
-- stored_due_ms in common.lua), history key prefix.
-- Returns {server now ms, next wake ms or '', {id, token, resume flag, {hash fields...}, history}...}
local prefix, limit, lease_ms, owner = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local history_prefix = ARGV[6]
local now = now_ms()
local paused = redis.call('EXISTS', KEYS[4]) == 1
local claims = {}

local function take(id)
  local hash = prefix .. id
  if redis.call('EXISTS', hash) == 0 then
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
    return
  end
  local token = redis.call('INCR', KEYS[3])
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[2], now + lease_ms, id)
  redis.call('HSET', hash, '_tok', token, '_own', owner)
  local live = redis.call('HGET', hash, '_live') == '1'
  local history = redis.call('GET', history_prefix .. id) or ''
  claims[#claims + 1] = {id, tostring(token), live and '1' or '', redis.call('HGETALL', hash), history}
end

local function hold_back(id)
  local hash = prefix .. id
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', hash, '_tok', '_own')
  local due = stored_due_ms(hash, ARGV[5])
  if due then
    redis.call('ZADD', KEYS[1], due, id)
  end
end

for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, limit)) do
  if paused and redis.call('HGET', prefix .. id, '_live') ~= '1' then
    hold_back(id)
  else
    take(id)
  end
end
if not paused and #claims < limit then
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit - #claims)) do
    take(id)
  end
end

local next_ms = nil
local lease_head = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if lease_head[2] then
  next_ms = tonumber(lease_head[2])
end
if not paused then
  local due_head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if due_head[2] and (next_ms == nil or tonumber(due_head[2]) < next_ms) then
    next_ms = tonumber(due_head[2])
  end
end
return {tostring(now), next_ms and string.format('%d', next_ms) or '', claims}
