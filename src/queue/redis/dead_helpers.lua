local function before_or_at(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as <= bs)
end
local function field(fields)
  local dest, err = '', ''
  for i = 1, #fields, 2 do
    if fields[i] == 'dest' then dest = fields[i + 1] elseif fields[i] == 'error' then err = fields[i + 1] end
  end
  return dest .. '\n' .. err
end
