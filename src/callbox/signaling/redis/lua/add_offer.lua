-- ARGV: prefix, id, room, offerer, oname, otype, osdp, created, size, max_waiting,
--       max_room_bytes, ttl
local id, room, offerer, oname = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local size, ttl = tonumber(ARGV[9]), tonumber(ARGV[12])
if redis.call('EXISTS', k('s', offerer)) == 0 then
  return fail('unauthorized', 'this connection has no session')
end
if redis.call('EXISTS', k('b', offerer)) == 1 then
  return fail('busy', 'cannot offer: this session already has a call')
end
local waiting = redis.call('ZCARD', k('w', room))
if waiting >= tonumber(ARGV[10]) then
  return fail('busy|waiting_offers',
    'cannot offer: room ' .. room .. ' already has ' .. waiting .. ' waiting offers')
end
local weight = tonumber(redis.call('GET', k('wb', room)) or '0')
if weight + size > tonumber(ARGV[11]) then
  return fail('busy|room_offer_bytes',
    'cannot offer: room ' .. room .. ' is full (' .. weight .. ' characters of offers)')
end
redis.call('HSET', k('o', id), 'room', room, 'offerer', offerer, 'oname', oname,
  'otype', ARGV[6], 'osdp', ARGV[7], 'created', ARGV[8], 'size', size, 'cbytes', 0,
  'answerer', '', 'aname', '', 'atype', '', 'asdp', '')
redis.call('EXPIRE', k('o', id), ttl)
redis.call('ZADD', k('w', room), ARGV[8], id)
redis.call('ZADD', k('wall'), ARGV[8], id)
redis.call('INCRBY', k('wb', room), size)
redis.call('HSET', k('byname', room), oname, id)
redis.call('SET', k('b', offerer), id, 'EX', ttl)
redis.call('DEL', k('p', offerer), k('pb', offerer))
for _, key in ipairs({k('w', room), k('wall'), k('wb', room), k('byname', room)}) do
  redis.call('EXPIRE', key, ttl)
end
return 'ok'
