if redis.call('EXISTS', KEYS[1]) == 1 then migrate(KEYS[1], KEYS[3], ARGV[1], 1000) end
local want = tonumber(ARGV[3])
local named = #ARGV > 4
local dests
if named then
  dests = {}
  for i = 5, #ARGV do dests[#dests + 1] = ARGV[i] end
else
  dests = redis.call('SMEMBERS', KEYS[3])
end
local due = {}
for _, dest in ipairs(dests) do
  local key = ARGV[1] .. dest
  local page = redis.call('ZRANGEBYSCORE', key, '-inf', ARGV[2], 'WITHSCORES', 'LIMIT', 0, want)
  if #page == 0 and not named and redis.call('EXISTS', key) == 0 then
    redis.call('SREM', KEYS[3], dest)
  end
  for i = 1, #page, 2 do due[#due + 1] = {tonumber(page[i + 1]), page[i], key} end
end
table.sort(due, function(a, b) return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2]) end)
local claimed = {}
for i = 1, math.min(want, #due) do
  local d = due[i]
  local body = redis.call('HGET', KEYS[2], d[2])
  local why = broken(body)
  if why then
    local dest = string.match(d[2], '|([^|]*)$') or ''
    dead_add(KEYS[4], KEYS[5], KEYS[6], body or '', 1, dest, 0,
      'the retry ' .. d[2] .. ' ' .. why, ARGV[2])
    redis.call('ZREM', d[3], d[2])
    redis.call('HDEL', KEYS[2], d[2])
  else
    redis.call('ZADD', d[3], 'XX', ARGV[4], d[2])
    claimed[#claimed + 1] = d[2]
    claimed[#claimed + 1] = body
  end
end
return claimed
