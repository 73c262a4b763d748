-- The agent turned free: bring forward its callbacks scheduled to look at it again, oldest due first,
-- to their due time, so the schedulers claim them now instead of after the reschedule delay; at most
-- `limit` of them are due at once after it (one already brought forward counts). One not in the due set
-- (claimed, live, or a leftover of a finished one) is passed over, and nothing moves later than it was.
-- Idempotent: every daemon hearing the agent turn free may run it.
-- KEYS: due, the agent's waiting order. ARGV: wake channel, limit. Returns how many moved.
local wake_channel, limit = ARGV[1], tonumber(ARGV[2])
local now = now_ms()
local moved, due_now = 0, 0
local waiting = redis.call('ZRANGE', KEYS[2], 0, 4 * limit - 1, 'WITHSCORES')
for i = 1, #waiting, 2 do
  local id = waiting[i]
  local at = tonumber(redis.call('ZSCORE', KEYS[1], id))
  if at and at > now then
    local due_ms = math.floor(tonumber(waiting[i + 1]) / 1000) -- the order is in microseconds
    place_due(KEYS[1], wake_channel, id, math.min(due_ms, now))
    moved = moved + 1
  end
  if at then
    due_now = due_now + 1
    if due_now >= limit then
      break
    end
  end
end
return moved
