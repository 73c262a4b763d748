-- Take what a callback's call needs, all or nothing, before the holder commits the ring: the locks
-- (its agent's in the agent phase, its contact number's) and, with a line pool, one line of it.
-- KEYS: leases, the locks..., [the line pool (hash: callback id -> token)].
-- ARGV: callback prefix, id, token, number of locks, line cap ('' = no pool), resume ('1' or '').
-- Fenced like every holder's write: a holder whose lease lapsed or was taken over is refused.
-- Returns {0} when taken, {i} when lock i (1-based) is held by another callback's call, {locks + 1}
-- when every line is taken. A resume (the call exists already) is never refused: it re-takes what names
-- its callback, and its line, whatever the others hold.
local prefix, id, token = ARGV[1], ARGV[2], ARGV[3]
local locks = tonumber(ARGV[4])
local cap = tonumber(ARGV[5])
local resume = ARGV[6] == '1'
local now = now_ms()
local hash = prefix .. id
local refusal = fence_error(hash, KEYS[1], id, token, now)
if refusal then
  return refusal
end

local function held_by_another(holder)
  return holder and string.match(holder, '^(%S+) ') ~= id and lock_holds(prefix, KEYS[1], holder, now)
end

local pool = cap and KEYS[locks + 2]
if not resume then
  for i = 1, locks do
    if held_by_another(redis.call('GET', KEYS[i + 1])) then
      return {i}
    end
  end
  if pool and lines_in_use(prefix, KEYS[1], pool, id, now) >= cap then
    return {locks + 1}
  end
end
local value = id .. ' ' .. token
for i = 1, locks do
  redis.call('SET', KEYS[i + 1], value)
end
if pool then
  redis.call('HSET', pool, id, token)
end
redis.call('HSET', hash, '_lk', token)
return {0}
