-- Move callbacks of the contact index to the entries their numbers have now (store/housekeeping.py:
-- after an upgrade from literal keys, or a change of the numbering plan). Each move is checked against
-- the number the caller read: a callback changed or created since then was indexed by its own write.
-- KEYS: contact index. ARGV: callback prefix, contact number field, then per move four values:
-- id, entry it sits in, its number as read ('' = the callback is gone), entry it belongs in ('' = none).
-- Returns how many moves were made.
local prefix, number_field = ARGV[1], ARGV[2]
local moved = 0
for i = 3, #ARGV, 4 do
  local id, from, number, to = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  if (redis.call('HGET', prefix .. id, number_field) or '') == number then
    hash_index_remove(KEYS[1], from, id)
    if to ~= '' then
      hash_index_add(KEYS[1], to, id)
    end
    moved = moved + 1
  end
end
return moved
