local entry = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #entry == 0 then return 0 end
redis.call('XDEL', KEYS[1], ARGV[1])
local state = redis.call('GET', KEYS[3])
if state == 'all' or (state and before_or_at(ARGV[1], state)) then
  local f = field(entry[1][2])
  if redis.call('HINCRBY', KEYS[2], f, -1) <= 0 then redis.call('HDEL', KEYS[2], f) end
end
return 1
