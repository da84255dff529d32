local function retries_of(id, deliveries, dests, prefix, legacy)
  local n = 0
  for _, dest in ipairs(redis.call('SMEMBERS', dests)) do
    local token = id .. '|' .. dest
    n = n + redis.call('ZREM', prefix .. dest, token)
    redis.call('ZREM', legacy, token)
    redis.call('HDEL', deliveries, token)
  end
  return n
end
local function letter_of(fields)
  local event, poison
  for i = 1, #fields, 2 do
    if fields[i] == 'event' then event = fields[i + 1] elseif fields[i] == 'poison' then poison = fields[i + 1] end
  end
  if poison == '1' or not event then return nil end
  local ok, e = pcall(cjson.decode, event)
  if ok and type(e) == 'table' and type(e.id) == 'string' then return e.id end
  return nil
end
local function dead_remove(dead, counts, counted, key)
  local entry = redis.call('XRANGE', dead, key, key)
  if #entry == 0 then return 0 end
  redis.call('XDEL', dead, key)
  local state = redis.call('GET', counted)
  if state == 'all' or (state and before_or_at(key, state)) then
    local f = field(entry[1][2])
    if redis.call('HINCRBY', counts, f, -1) <= 0 then redis.call('HDEL', counts, f) end
  end
  return 1
end
