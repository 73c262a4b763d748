-- Claim up to `limit` callbacks, oldest first: first those whose lease expired (their holder is gone or
-- late), then due ones. Each claim gets a new fencing token (from one global counter, so tokens only
-- grow) and a lease ending `lease ms` from now on the server clock. While paused, due callbacks wait and
-- so do expired claims that never went live (they go back to the due set); live ones are still taken
-- over, because a call exists and someone must follow it, and so are those with a person's change
-- request pending (request.lua), which a holder must apply.
-- With a line pool (calls capped across daemons, see lock.lua), no more due callbacks are claimed than
-- lines are free, and each one claimed holds its line from now on (like a lock: lock_holds), so two
-- daemons claiming at once cannot both count the same line free. The others stay in the due set in
-- their order (oldest due first) until a line frees (unlock.lua wakes the schedulers); meanwhile the
-- overdue head does not count as a wake-up time.
-- KEYS: due, leases, fence, paused, [line pool]. ARGV: callback prefix, limit, lease ms, owner, due
-- fields (see stored_due_ms in common.lua), history key prefix, [line cap].
-- Returns {server now ms, next wake ms or '', claims as one JSON array of
-- [id, token, [hash field, value, ...], history]} ('' when none): one bulk string parses far faster
-- client-side than thousands of nested replies. The hash fields include '_live' for a resume claim
-- and '_req' for a pending change request.
local prefix, limit, lease_ms, owner = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local history_prefix = ARGV[6]
local now = now_ms()
local paused = redis.call('EXISTS', KEYS[4]) == 1
local claims = {}
local leases = {}

-- Work is batched: one INCRBY for the tokens, one ZADD for the leases (Lua calls dominate the cost).
local function take(ids, pool)
  local token = redis.call('INCRBY', KEYS[3], #ids) - #ids
  for _, id in ipairs(ids) do
    token = token + 1
    local hash = prefix .. id
    local fields = redis.call('HGETALL', hash)
    if #fields == 0 then
      redis.call('ZREM', KEYS[2], id) -- a vanished record: forget it
    else
      redis.call('HSET', hash, '_tok', token, '_own', owner)
      if pool then -- the line is the claim's from now on, so no other daemon counts it free meanwhile
        redis.call('HSET', pool, id, token)
        redis.call('HSET', hash, '_lk', token)
      end
      leases[#leases + 1] = now + lease_ms
      leases[#leases + 1] = id
      claims[#claims + 1] = {id, token, fields, redis.call('GET', history_prefix .. id) or ''}
    end
  end
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

local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, limit)
if paused then
  local live = {}
  for _, id in ipairs(expired) do
    local hash = prefix .. id
    if redis.call('HGET', hash, '_live') == '1' or redis.call('HEXISTS', hash, '_req') == 1 then
      live[#live + 1] = id
    else
      hold_back(id)
    end
  end
  expired = live
end
if #expired > 0 then
  take(expired)
end
local due_limit = limit - #expired
local lines_full = false
if KEYS[5] and not paused then
  local free = tonumber(ARGV[7]) - lines_in_use(prefix, KEYS[2], KEYS[5], '', now)
  lines_full = free <= 0
  due_limit = math.min(due_limit, free)
end
if not paused and due_limit > 0 then
  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, due_limit)
  if #due > 0 then
    redis.call('ZREMRANGEBYRANK', KEYS[1], 0, #due - 1) -- exactly these: the lowest scores
    take(due, KEYS[5])
  end
end
if #leases > 0 then
  redis.call('ZADD', KEYS[2], unpack(leases))
end

local next_ms = nil
local lease_head = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if lease_head[2] then
  next_ms = tonumber(lease_head[2])
end
if not paused then
  local due_head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  local waits_for_a_line = lines_full and due_head[2] and tonumber(due_head[2]) <= now
  if due_head[2] and not waits_for_a_line and (next_ms == nil or tonumber(due_head[2]) < next_ms) then
    next_ms = tonumber(due_head[2])
  end
end
return {tostring(now), next_ms and string.format('%d', next_ms) or '', #claims > 0 and cjson.encode(claims) or ''}
