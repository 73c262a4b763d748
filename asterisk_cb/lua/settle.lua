-- The holder refused a person's pending change (the lifecycle does not take it in the callback's
-- state, e.g. the contact answered meanwhile): the request is dropped and its outcome handed to the
-- requester; the callback itself is unchanged. A callback held only because the request was pending
-- (not live) is let go like a commit would: back to the due set, or nowhere when finished.
-- KEYS: due, leases. ARGV: callback prefix, id, token, wake channel, request id, outcome key,
-- outcome (JSON), outcome ttl seconds, due ms ('' = not due), live ('1' or '').
-- Returns 1 if the holder keeps the callback, 0 if it was let go.
local id = ARGV[2]
local hash = ARGV[1] .. id
local refusal = fence_error(hash, KEYS[2], id, ARGV[3], now_ms())
if refusal then
  return refusal
end
take_request(hash, ARGV[5], ARGV[6], ARGV[7], ARGV[8])
if ARGV[10] == '1' then
  return 1
end
let_go(KEYS[1], KEYS[2], ARGV[4], hash, id, ARGV[9] ~= '' and ARGV[9] or nil)
return 0
