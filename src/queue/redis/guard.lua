if redis.call('ZCARD', KEYS[1]) == 0 then return 0 end
local n = tonumber(ARGV[3])
local tail = {}
if n > 0 then tail = redis.call('XREVRANGE', KEYS[4], '+', '-', 'COUNT', n) end
for i = 4, #ARGV do
  local id = ARGV[i]
  if redis.call('ZSCORE', KEYS[1], id) then
    redis.call('DEL', ARGV[2] .. id)
    retries_of(id, KEYS[2], KEYS[3], ARGV[1], KEYS[7])
    for _, entry in ipairs(tail) do
      if letter_of(entry[2]) == id then dead_remove(KEYS[4], KEYS[5], KEYS[6], entry[1]) end
    end
  end
end
return 0
