-- Replaces the hold in field ARGV[1] of the hash KEYS[1] with ARGV[3]
-- (removes it when ARGV[3] is empty) only if it is stored as ARGV[2] (absent
-- when ARGV[2] is empty). Returns 1 when it did, 0 when another changed it.
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current == false then current = '' end
if current ~= ARGV[2] then return 0 end
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
end
return 1
