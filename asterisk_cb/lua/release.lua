-- Give a claim back unchanged (a stopping daemon hands back work it never started). A live callback is
-- not released: its lease lapses and the next holder resumes it. KEYS: due, leases.
-- ARGV: callback prefix, id, token, wake channel, due fields (see stored_due_ms in common.lua).
-- Returns 1 if released, 0 if left to lapse.
local id = ARGV[2]
local hash = ARGV[1] .. id
local refusal = fence_error(hash, KEYS[2], id, ARGV[3], now_ms())
if refusal then
  return refusal
end
if redis.call('HGET', hash, '_live') == '1' then
  return 0
end
redis.call('ZREM', KEYS[2], id)
redis.call('HDEL', hash, '_tok', '_own')
local due = stored_due_ms(hash, ARGV[5])
if due then
  place_due(KEYS[1], ARGV[4], id, due)
end
return 1
