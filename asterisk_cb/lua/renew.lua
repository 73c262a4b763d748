-- Extend the lease of the current holder. KEYS: leases. ARGV: callback prefix, id, token, lease ms.
-- Returns the new expiry (server ms).
local hash = ARGV[1] .. ARGV[2]
local now = now_ms()
local refusal = fence_error(hash, KEYS[1], ARGV[2], ARGV[3], now)
if refusal then
  return refusal
end
local expiry = now + tonumber(ARGV[4])
redis.call('ZADD', KEYS[1], 'XX', expiry, ARGV[2])
return expiry
