-- A person's change of a callback whose call is live. Only the lease holder can hang the call up, so
-- the change is recorded on the callback (hash field `_req`, the request as JSON) for the holder to
-- apply through its own fenced commit, and the holder is woken on the requests channel. A holder that
-- missed the wake-up learns of it at its next commit (write.lua returns it); a daemon that takes the
-- callback over gets it with the claim. One request at a time per callback.
-- KEYS: the callback's hash. ARGV: id, request (JSON), requests channel.
-- Errors: NOTFOUND; PENDING <pending request JSON> while another request waits; NOTLIVE when no call
-- exists (any more): the person then changes the callback directly (write.lua without a token).
local id = ARGV[1]
local hash = KEYS[1]
if redis.call('EXISTS', hash) == 0 then
  return fail('NOTFOUND', id)
end
local pending = redis.call('HGET', hash, '_req')
if pending then
  return fail('PENDING', pending)
end
if redis.call('HGET', hash, '_live') ~= '1' then
  return fail('NOTLIVE', id .. ' has no live call')
end
redis.call('HSET', hash, '_req', ARGV[2])
redis.call('PUBLISH', ARGV[3], id)
return 1
