-- Trim the event stream to entries younger than ARGV[1] ms (server clock), but never an entry some consumer
-- group has not yet read and acknowledged: the floor is lowered to each group's oldest pending entry,
-- or to just after its last delivered one. KEYS: events. Returns the number of entries removed.
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end

local function older(a, b)
  local a_ms, a_seq = parse(a)
  local b_ms, b_seq = parse(b)
  return a_ms < b_ms or (a_ms == b_ms and a_seq < b_seq)
end

local function group_floor(group)
  local name, last_delivered
  for i = 1, #group, 2 do
    if group[i] == 'name' then
      name = group[i + 1]
    elseif group[i] == 'last-delivered-id' then
      last_delivered = group[i + 1]
    end
  end
  local pending = redis.call('XPENDING', KEYS[1], name)
  if tonumber(pending[1]) > 0 then
    return pending[2]
  end
  local ms, seq = parse(last_delivered)
  return string.format('%d-%d', ms, seq + 1)
end

if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local floor = string.format('%d-0', now_ms() - tonumber(ARGV[1]))
for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local bound = group_floor(group)
  if older(bound, floor) then
    floor = bound
  end
end
return redis.call('XTRIM', KEYS[1], 'MINID', floor)
