local prefix, due, legacy = ARGV[1], ARGV[2], ARGV[3] == '1'
local i, moved = 4, 0
while i <= #ARGV do
  local key, n = ARGV[i], tonumber(ARGV[i + 1])
  i = i + 2
  -- Added before the letter is removed: a server out of memory refuses
  -- the first addition, before anything is written.
  if #redis.call('XRANGE', KEYS[1], key, key) > 0 then
    moved = moved + 1
    for j = i, i + 3 * (n - 1), 3 do
      local token, dest = ARGV[j], ARGV[j + 1]
      redis.call('ZADD', prefix .. dest, due, token)
      redis.call('HSET', KEYS[4], token, ARGV[j + 2])
      redis.call('SADD', KEYS[5], dest)
      if legacy then redis.call('ZREM', KEYS[6], token) end
    end
    dead_remove(KEYS[1], KEYS[2], KEYS[3], key)
  end
  i = i + 3 * n
end
return moved
