local state = redis.call('GET', KEYS[3])
if state == 'all' then
  -- A dead stream deleted by hand takes its counts with it.
  if redis.call('XLEN', KEYS[1]) == 0 then redis.call('DEL', KEYS[2]) end
  return 1
end
local start = '-'
if state then start = '(' .. state else redis.call('DEL', KEYS[2]) end
local page = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', ARGV[1])
for _, entry in ipairs(page) do redis.call('HINCRBY', KEYS[2], field(entry[2]), 1) end
if #page < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[3], 'all')
  return 1
end
redis.call('SET', KEYS[3], page[#page][1])
return 0
