-- ARGV: prefix, created before. Removes and returns (JSON array) the waiting offers older.
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', k('wall'), '-inf', '(' .. ARGV[2])) do
  local o = remove_offer(id)
  if o then out[#out + 1] = o end
end
if #out == 0 then return '[]' end
return cjson.encode(out)
