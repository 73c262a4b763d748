-- Create a callback once. KEYS: due, events.
-- ARGV: callback prefix, id, wake channel, idempotency key name ('' = none), its TTL in seconds,
--       due ms ('' = not due), then fields, index ops, events (see common.lua).
-- Returns {1, id} when created, {0, first id} when the idempotency key was already used.
local hash = ARGV[1] .. ARGV[2]
local idem_key = ARGV[4]
if idem_key ~= '' then
  local first = redis.call('GET', idem_key)
  if first then
    return {0, first}
  end
end
if redis.call('EXISTS', hash) == 1 then
  return fail('EXISTS', ARGV[2] .. ' already exists')
end
local fields, pos = read_pairs(7)
redis.call('HSET', hash, unpack(fields))
if ARGV[6] ~= '' then
  place_due(KEYS[1], ARGV[3], ARGV[2], ARGV[6])
end
pos = apply_index_ops(pos)
append_events(KEYS[2], pos)
if idem_key ~= '' then
  redis.call('SET', idem_key, ARGV[2], 'EX', ARGV[5])
end
return {1, ARGV[2]}
