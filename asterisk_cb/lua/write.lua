-- Replace a callback's record atomically, guarded by its version and (for a lease holder) its fence.
-- KEYS: due, leases, events.
-- ARGV: callback prefix, id, wake channel, version field name, expected version, fencing token
--       ('' = a person's edit), due ms ('' = not due), live ('1' or ''), history key prefix, change
--       (JSON, see common.lua).
--
-- A holder's write (token given) needs the current token and an unexpired lease. If the new record is
-- live the holder keeps its lease; otherwise the lease is released and the callback goes back to the
-- due set (scheduled again) or nowhere (finished), and the call's locks lapse (see lock_holds).
-- A person's write (no token) is refused while the callback is live. On a callback that is claimed but
-- not yet live it wins: the lease is revoked, so the holder's next fenced write (at the latest the one
-- recording its attempt, made before it dials) is refused and it never dials.
local id = ARGV[2]
local hash = ARGV[1] .. id
local version = redis.call('HGET', hash, ARGV[4])
if not version then
  return fail('NOTFOUND', id)
end
-- The fence is checked first: a holder whose claim was revoked must learn it lost the callback.
local token = ARGV[6]
local keep_lease = false
if token ~= '' then
  local refusal = fence_error(hash, KEYS[2], id, token, now_ms())
  if refusal then
    return refusal
  end
  keep_lease = ARGV[8] == '1'
elseif redis.call('HGET', hash, '_live') == '1' then
  return fail('LIVE', id .. ' is live: a person may not change it now')
end
if version ~= ARGV[5] then
  return fail('VERSION', id .. ' is at version ' .. version .. ', not ' .. ARGV[5])
end
local owner = redis.call('HGET', hash, '_own')
local locked = redis.call('HGET', hash, '_lk') -- the token that took the call's locks (lock.lua)
local change = cjson.decode(ARGV[10])
redis.call('DEL', hash)
redis.call('HSET', hash, unpack(change.fields))
write_history(ARGV[9] .. id, change.history)
if keep_lease then
  redis.call('HSET', hash, '_tok', token, '_own', owner)
  if locked then -- the call goes on, and so do its locks; any other write ends them with the record
    redis.call('HSET', hash, '_lk', locked)
  end
else
  redis.call('ZREM', KEYS[2], id)
end
if ARGV[7] ~= '' and not keep_lease then
  place_due(KEYS[1], ARGV[3], id, ARGV[7])
else
  redis.call('ZREM', KEYS[1], id)
end
apply_index_ops(change.index, id)
append_events(KEYS[3], change.events)
return 1
