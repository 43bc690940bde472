-- KEYS[1] the key's attempts (hash: n = attempts counted, until = no attempt before this, ms);
-- ARGV: free attempts, first wait ms, longest wait ms, window ms -> {1, attempts} when allowed (counted),
-- {0, ms to wait} when refused (not counted). The same rule as usher_core::admin::Backoff.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait_until = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if wait_until > now then
  return { 0, wait_until - now }
end
local free, initial, longest, window =
  tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
local wait = 0
if n >= free then
  wait = math.min(initial * 2 ^ math.min(n - free, 40), longest)
end
redis.call('HSET', KEYS[1], 'until', string.format('%d', now + wait))
redis.call('PEXPIRE', KEYS[1], string.format('%d', math.max(window, wait)))
return { 1, n }
