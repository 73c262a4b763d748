-- Put callbacks in the due orders (store/housekeeping.py build_due_order: an upgrade from the agent
-- sets). Each callback is read and placed in one step, so a write racing the build is never undone:
-- the write places it by its own due time, and this reads the same hash.
-- KEYS: the due order. ARGV: callback prefix, agent-order prefix, due field, agent field, then ids.
-- Returns how many were placed (a callback gone meanwhile is skipped).
local prefix, agent_prefix, due_field, agent_field = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local placed = 0
for i = 5, #ARGV do
  local id = ARGV[i]
  local due = redis.call('HGET', prefix .. id, due_field)
  if due then
    redis.call('ZADD', KEYS[1], due, id)
    local agent = redis.call('HGET', prefix .. id, agent_field)
    if agent and agent ~= '' then
      redis.call('ZADD', agent_prefix .. agent, due, id)
    end
    placed = placed + 1
  end
end
return placed
