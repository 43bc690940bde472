-- KEYS[1] config generation, KEYS[2] CDN id set; ARGV: prefix, the generation of the caller's copy ('' without
-- one) -> {generation, 'current'} when that copy is current, else
-- {generation, 'pool', cdn json, health json or false, ...} (the pool may be empty)
local gen = config_generation(KEYS[1])
if ARGV[2] == gen then return { gen, 'current' } end
local out = { gen, 'pool' }
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local cdn = redis.call('GET', ARGV[1] .. 'cdn:' .. id)
  if cdn then
    out[#out + 1] = cdn
    out[#out + 1] = redis.call('GET', ARGV[1] .. 'cdn_health:' .. id) or false
  end
end
return out
