local id = ARGV[1]
local at = 5
local entries = 0
for i = at + 1, at + tonumber(ARGV[at]) do
  entries = entries + redis.call('XDEL', KEYS[1], ARGV[i])
  redis.call('ZREM', KEYS[2], ARGV[i])
end
at = at + tonumber(ARGV[at]) + 1
local letters = 0
for i = at + 1, at + tonumber(ARGV[at]) do
  letters = letters + dead_remove(KEYS[5], KEYS[6], KEYS[7], ARGV[i])
end
for _, entry in ipairs(redis.call('XRANGE', KEYS[5], ARGV[4], '+')) do
  if letter_of(entry[2]) == id then
    letters = letters + dead_remove(KEYS[5], KEYS[6], KEYS[7], entry[1])
  end
end
local idem = 0
for i = at + tonumber(ARGV[at]) + 1, #ARGV do
  if redis.call('GET', ARGV[i]) == id then idem = idem + redis.call('DEL', ARGV[i]) end
end
local retries = retries_of(id, KEYS[3], KEYS[4], ARGV[3], KEYS[10])
local attempts = 0
local records = redis.call('GET', KEYS[8])
if records then
  attempts = 1
  for _ in string.gmatch(records, '\n') do attempts = attempts + 1 end
end
redis.call('DEL', KEYS[8])
redis.call('ZADD', KEYS[9], ARGV[2], id)
return {entries, retries, letters, attempts, idem}
