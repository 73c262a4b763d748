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
let_go(KEYS[1], KEYS[2], ARGV[4], hash, id, stored_due_ms(hash, ARGV[5]))
return 1
