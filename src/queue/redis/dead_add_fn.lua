local function dead_add(dead, counts, counted, event, poison, dest, attempts, err, at)
  local state = redis.call('GET', counted)
  if not state and redis.call('XLEN', dead) == 0 then
    redis.call('DEL', counts)
    redis.call('SET', counted, 'all')
    state = 'all'
  end
  redis.call('XADD', dead, '*', 'event', event, 'poison', poison, 'dest', dest,
    'attempts', attempts, 'error', err, 'at', at)
  if state == 'all' then redis.call('HINCRBY', counts, dest .. '\n' .. err, 1) end
end
