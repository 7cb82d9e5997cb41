-- ARGV: prefix, token key, node, socket, last seq ('' : none), identity, room ('' : any),
--       new token key, ttl. Returns JSON or an error.
local sid = redis.call('GET', k('tok', ARGV[2]))
local m = sid and k('m', sid)
if not sid or redis.call('EXISTS', m) == 0 then
  return fail('unauthorized', 'resume token not valid: unknown, used or expired')
end
local h = redis.call('HGETALL', m)
local b = {}
for i = 1, #h, 2 do b[h[i]] = h[i + 1] end
if ARGV[6] ~= b.identity or (ARGV[7] ~= '' and ARGV[7] ~= b.room) then
  return fail('forbidden', 'the credentials are for another user or room than this session')
end
local seq = tonumber(b.seq)
local away = tonumber(b.away)
local replaced = false
if b.node ~= '' then
  replaced = {b.node, b.socket}
  away = seq + 1
  redis.call('SREM', k('node', b.node), sid)
end
local first = away
if ARGV[5] ~= '' then first = math.min(tonumber(ARGV[5]), seq) + 1 end
local letters = {}
for _, kept in ipairs(redis.call('LRANGE', k('ml', sid), 0, -1)) do
  local letter = string.match(kept, '^%d+ (.*)$')
  local n = tonumber(string.match(letter, '^%[(%d+),'))
  if n >= first then letters[#letters + 1] = letter end
end
local lost = false
if first <= seq then
  if #letters == 0 then lost = true
  else lost = tonumber(string.match(letters[1], '^%[(%d+),')) > first end
end
if b.held ~= '' then
  redis.call('ZREM', k('holds'), sid)
  if redis.call('DECR', k('heldfrom', b.address)) <= 0 then
    redis.call('DEL', k('heldfrom', b.address))
  end
end
redis.call('DEL', k('tok', ARGV[2]))
redis.call('SET', k('tok', ARGV[8]), sid, 'EX', tonumber(ARGV[9]))
redis.call('HSET', m, 'node', ARGV[3], 'socket', ARGV[4], 'held', '', 'away', away,
  'token', ARGV[8])
redis.call('EXPIRE', m, tonumber(ARGV[9]))
redis.call('SADD', k('node', ARGV[3]), sid)
if #letters == 0 then letters = cjson.decode('[]') end
return cjson.encode({sid = sid, letters = letters, next = seq + 1, lost = lost,
  replaced = replaced, rate = b.rate, identity = b.identity, address = b.address,
  ahigh = tonumber(b.ahigh)})
