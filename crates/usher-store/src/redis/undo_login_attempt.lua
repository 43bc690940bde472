-- KEYS[1] the key's attempts (see login_attempt.lua); ARGV: free attempts. Takes one attempt back; a wait
-- ends when the count falls below the free attempts.
local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
if n <= 0 then
  return 0
end
n = n - 1
redis.call('HSET', KEYS[1], 'n', n)
if n < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'until', 0)
end
return n
