-- The configuration generation (redis/cache.rs), kept as decimal text and compared as text. Every write of
-- a show or of the CDN pool moves it past both its last value and Redis's clock in microseconds, so that a
-- value once handed out never comes back for other contents, even after a fail-over lost the last writes
-- or a restored backup moved it back: nodes then only ever see it grow.

local function config_generation(key)
  return redis.call('GET', key) or '0'
end

local function bump_generation(key)
  local t = redis.call('TIME')
  local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local g = string.format('%.0f', math.max(tonumber(config_generation(key)) + 1, now_us))
  redis.call('SET', key, g)
  return g
end
