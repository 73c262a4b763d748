-- The agent turned free: bring forward its callbacks scheduled to look at it again (oldest due first,
-- at most `limit`) to their due time, so the schedulers claim them now instead of after the
-- reschedule delay. Only those still waiting in the due set move (not a claimed or live one, nor one
-- already brought forward), and never later than they were. Idempotent: every daemon hearing the
-- agent turn free may run it.
-- KEYS: due, the agent's waiting order. ARGV: wake channel, limit. Returns how many moved.
local wake_channel, limit = ARGV[1], tonumber(ARGV[2])
local now = now_ms()
local moved = 0
local waiting = redis.call('ZRANGE', KEYS[2], 0, limit - 1, 'WITHSCORES')
for i = 1, #waiting, 2 do
  local id = waiting[i]
  local due_ms = math.floor(tonumber(waiting[i + 1]) / 1000) -- the order is in microseconds
  local at = tonumber(redis.call('ZSCORE', KEYS[1], id))
  if at and at > now then
    place_due(KEYS[1], wake_channel, id, math.min(due_ms, now))
    moved = moved + 1
  end
end
return moved
