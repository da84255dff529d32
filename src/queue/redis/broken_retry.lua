local function broken(body)
  if not body then return 'has no delivery' end
  local ok, d = pcall(cjson.decode, body)
  if not ok then return 'is not JSON' end
  local function text(v) return type(v) == 'string' end
  local e = type(d) == 'table' and d.event
  if type(e) ~= 'table' or not text(e.id) or not text(e.type) or not text(e.ts)
      or type(e.payload) ~= 'table' or not text(d.dest) or type(d.attempts) ~= 'number'
      or d.attempts < 0 or d.attempts % 1 ~= 0 or d.attempts > 4294967295
      or (d.last_error ~= nil and d.last_error ~= cjson.null and not text(d.last_error)) then
    return 'is not a delivery'
  end
  return nil
end
