local function migrate(legacy, dests, prefix, chunk)
  local page = redis.call('ZRANGE', legacy, 0, chunk - 1, 'WITHSCORES')
  local tokens = {}
  for i = 1, #page, 2 do
    local dest = string.match(page[i], '|([^|]*)$') or ''
    redis.call('ZADD', prefix .. dest, page[i + 1], page[i])
    redis.call('SADD', dests, dest)
    tokens[#tokens + 1] = page[i]
  end
  if #tokens > 0 then redis.call('ZREM', legacy, unpack(tokens)) end
  return redis.call('ZCARD', legacy)
end
