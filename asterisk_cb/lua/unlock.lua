-- Give back what a callback's call held (lock.lua) once its run is over, whatever the ending: every
-- lock and line that still names this callback and token. Nothing is given back while the call lives
-- (the daemon stops, or lost its lease: whoever resumes the call re-takes them), nor by a late holder
-- (another token took them over). A freed line wakes the schedulers: due callbacks may wait for it.
-- KEYS: the locks..., [the line pool]. ARGV: callback prefix, id, token, number of locks, wake channel.
-- Returns how many were given back.
local prefix, id, token = ARGV[1], ARGV[2], ARGV[3]
local locks = tonumber(ARGV[4])
local hash = prefix .. id
if redis.call('HGET', hash, '_live') == '1' then
  return 0
end
local value = id .. ' ' .. token
local released = 0
for i = 1, locks do
  if redis.call('GET', KEYS[i]) == value then
    redis.call('DEL', KEYS[i])
    released = released + 1
  end
end
local pool = KEYS[locks + 1]
if pool and redis.call('HGET', pool, id) == token then
  redis.call('HDEL', pool, id)
  redis.call('PUBLISH', ARGV[5], 'line')
  released = released + 1
end
if redis.call('HGET', hash, '_lk') == token then
  redis.call('HDEL', hash, '_lk')
end
return released
