-- Delete a finished callback for good (retention): its hash, its history and its index entries.
-- Refused (returns 0) unless it is still at the version the caller read and nobody holds or schedules
-- it, so only a record that can never change again is removed. KEYS: due, leases.
-- ARGV: callback prefix, id, version field, expected version, history key, change (JSON, index only).
local id = ARGV[2]
local hash = ARGV[1] .. id
if redis.call('HGET', hash, ARGV[3]) ~= ARGV[4] or redis.call('HEXISTS', hash, '_tok') == 1 then
  return 0
end
if redis.call('ZSCORE', KEYS[1], id) or redis.call('ZSCORE', KEYS[2], id) then
  return 0
end
redis.call('DEL', hash, ARGV[5])
apply_index_ops(cjson.decode(ARGV[6]).index, id)
return 1
