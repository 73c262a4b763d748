-- Which of the given call locks hold now (read only): e.g. which agents are in a callback's call, so a
-- starting daemon leaves the queue pauses of another live daemon's calls alone.
-- KEYS: leases, the locks...  ARGV: callback prefix.
-- Returns the 1-based positions (among the locks) of those that hold.
local now = now_ms()
local held = {}
for i = 2, #KEYS do
  local holder = redis.call('GET', KEYS[i])
  if holder and lock_holds(ARGV[1], KEYS[1], holder, now) then
    held[#held + 1] = i - 1
  end
end
return held
