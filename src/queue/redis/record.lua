local erased = redis.call('ZCARD', KEYS[1]) > 0
for i = 3, #ARGV, 2 do
  local id = ARGV[i]
  if not (erased and redis.call('ZSCORE', KEYS[1], id)) then
    local key = ARGV[2] .. id
    if not redis.call('SET', key, ARGV[i + 1], 'NX', 'PX', ARGV[1]) then
      redis.call('APPEND', key, '\n' .. ARGV[i + 1])
    end
  end
end
return 0
