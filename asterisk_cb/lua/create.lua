-- Create a callback once. KEYS: due, events.
-- ARGV: callback prefix, id, wake channel, idempotency key ('' = none), idempotency bucket prefix,
--       window seconds, due ms, history key prefix, change (JSON, see common.lua).
-- Idempotency keys live in one hash per window (bucket = server seconds // window) that expires as a
-- whole; the current and the previous bucket are searched, so a key is honoured for at least one window
-- and at most two.
-- Returns {1, id} when created, {0, first id} when the idempotency key was already used.
local id, idem = ARGV[2], ARGV[4]
local hash = ARGV[1] .. id
local window = tonumber(ARGV[6])
local bucket = math.floor(now_ms() / 1000 / window)
if idem ~= '' then
  for b = bucket, bucket - 1, -1 do
    local first = redis.call('HGET', ARGV[5] .. string.format('%d', b), idem)
    if first then
      return {0, first}
    end
  end
end
if redis.call('EXISTS', hash) == 1 then
  return fail('EXISTS', id .. ' already exists')
end
local change = cjson.decode(ARGV[9])
redis.call('HSET', hash, unpack(change.fields))
write_history(ARGV[8] .. id, change.history)
place_due(KEYS[1], ARGV[3], id, ARGV[7])
apply_index_ops(change.index, id)
append_events(KEYS[2], change.events)
if idem ~= '' then
  local bucket_key = ARGV[5] .. string.format('%d', bucket)
  redis.call('HSET', bucket_key, idem, id)
  redis.call('EXPIRE', bucket_key, window * 2)
end
return {1, id}
