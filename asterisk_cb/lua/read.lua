-- Read callbacks in one round trip (store/records.py get_many): a listing's page of a hundred costs one
-- reply instead of two commands each, which the client's per-command work made the bulk of a read.
-- KEYS: the due set (unused: it routes the script to the namespace's slot on a Cluster).
-- ARGV: callback prefix, history prefix, then the ids.
-- Returns, per id, its hash as a flat array (empty when the callback is gone) and its history (nil).
local callback_prefix, history_prefix = ARGV[1], ARGV[2]
local found = {}
for i = 3, #ARGV do
  found[#found + 1] = redis.call('HGETALL', callback_prefix .. ARGV[i])
  found[#found + 1] = redis.call('GET', history_prefix .. ARGV[i])
end
return found
