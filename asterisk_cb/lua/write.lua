-- Replace a callback's record atomically, guarded by its version and (for a lease holder) its fence.
-- KEYS: due, leases, events.
-- ARGV: callback prefix, id, wake channel, version field name, expected version, fencing token
--       ('' = a person's edit), due ms ('' = not due), live ('1' or ''), history key prefix, change
--       (JSON, see common.lua), then for a holder's write applying a person's change request: the
--       request id ('' = none), its outcome key, outcome (JSON) and outcome ttl seconds.
--
-- A holder's write (token given) needs the current token and an unexpired lease. If the new record is
-- live the holder keeps its lease; otherwise the lease is released and the callback goes back to the
-- due set (scheduled again) or nowhere (finished), and the call's locks lapse (see lock_holds).
-- Exception: while a person's change request is pending (request.lua) the holder keeps the callback
-- (and its locks) whatever its state, so the request is applied (or refused, settle.lua) by a holder
-- and never left behind.
-- A person's write (no token) is refused while the callback is live or a change request is pending.
-- On a callback that is claimed but not yet live it wins: the lease is revoked, so the holder's next
-- fenced write (at the latest the one recording its attempt, made before it dials) is refused and it
-- never dials.
-- Returns the pending change request (JSON) the holder must apply now, or ''.
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
elseif redis.call('HEXISTS', hash, '_req') == 1 then
  return fail('PENDING', redis.call('HGET', hash, '_req'))
elseif redis.call('HGET', hash, '_live') == '1' then
  return fail('LIVE', id .. ' is live: a person may not change it now')
end
if version ~= ARGV[5] then
  return fail('VERSION', id .. ' is at version ' .. version .. ', not ' .. ARGV[5])
end
if token ~= '' and ARGV[11] ~= '' then
  take_request(hash, ARGV[11], ARGV[12], ARGV[13], ARGV[14])
end
local pending = redis.call('HGET', hash, '_req')
local change = cjson.decode(ARGV[10])
if #change.fields > 0 then
  redis.call('HSET', hash, unpack(change.fields))
end
if #change.drop > 0 then
  redis.call('HDEL', hash, unpack(change.drop))
end
if change.history then
  write_history(ARGV[9] .. id, change.history)
end
if pending then
  keep_lease = true
end
if not keep_lease then -- the claim ends, and so do the call's locks (lock.lua's '_lk')
  redis.call('HDEL', hash, '_tok', '_own', '_lk')
  redis.call('ZREM', KEYS[2], id)
end
if ARGV[7] ~= '' and not keep_lease then
  place_due(KEYS[1], ARGV[3], id, ARGV[7])
else
  redis.call('ZREM', KEYS[1], id)
end
apply_index_ops(change.index, id)
append_events(KEYS[3], change.events)
return pending or ''
