-- On a Redis Cluster, one shard's part of the live counts. KEYS[1] a key of the shard (it routes the call);
-- ARGV: the shard's key prefix, show ids -> for each show, its sessions in the shard whose lease runs (the
-- shard's `live` set of the show, scored by lease expiry, counted from Redis's clock).
local t = redis.call('TIME')
local now = '(' .. string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
local out = {}
for i = 2, #ARGV do
  out[#out + 1] = redis.call('ZCOUNT', ARGV[1] .. 'live:' .. ARGV[i], now, '+inf')
end
return out
