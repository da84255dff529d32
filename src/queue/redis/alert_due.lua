local between = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0') or 0
if between <= 0 then return false end
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[2]) then return false end
local err = redis.call('HGET', KEYS[3], ARGV[1]) or ''
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return {between, err}
