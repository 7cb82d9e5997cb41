-- ARGV: prefix, room. The room's waiting offers, oldest first, as a JSON array
local out = {}
for _, id in ipairs(redis.call('ZRANGE', k('w', ARGV[2]), 0, -1)) do
  local o = offer_table(id)
  if o then out[#out + 1] = o end
end
if #out == 0 then return '[]' end
return cjson.encode(out)
