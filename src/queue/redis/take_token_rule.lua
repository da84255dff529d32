local interval = tonumber(ARGV[1])
local ok, stored = pcall(redis.call, 'GET', KEYS[1])
local why = false
if not ok then
  why = 'not a string'
elseif stored then
  local digits = string.match(stored, '^%-?(%d+)$')
  if not digits or #digits > 15 then
    why = 'not a whole number of milliseconds'
  elseif tonumber(stored) > now + interval then
    why = 'further ahead than one interval'
  elseif tonumber(stored) > now then
    return {tonumber(stored) - now, false}
  end
end
redis.call('SET', KEYS[1], now + interval, 'PX', interval)
return {0, why}
