-- KEYS[1] the user's console session hashes (set); ARGV: console session key prefix, the hash to keep
-- ('' for none) -> how many sessions ended. Hashes of sessions that lapsed meanwhile leave the set too.
local ended = 0
for _, h in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if h ~= ARGV[2] then
    ended = ended + redis.call('DEL', ARGV[1] .. h)
    redis.call('SREM', KEYS[1], h)
  end
end
return ended
