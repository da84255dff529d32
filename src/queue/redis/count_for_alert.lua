if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[3]) then
  local between = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0') or 0
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
  return between + tonumber(ARGV[2])
end
redis.call('HINCRBY', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
return false
