local first = redis.call('GET', KEYS[1])
if first then return first end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('XADD', KEYS[2], '*', 'type', ARGV[3], 'payload', ARGV[4], 'id', ARGV[1], 'ts', ARGV[5])
return false
