-- ARGV: prefix, answerer sid, answerer name, room, answer type, answer sdp, offer id ('' : by
--       name), offerer name ('' : none), ttl. Returns JSON {offer, held} or an error; any
--       refusal drops the candidates held for the answer.
local asid, aname, room, id, name = ARGV[2], ARGV[3], ARGV[4], ARGV[7], ARGV[8]
local ttl = tonumber(ARGV[9])
local function refuse(code, message)
  redis.call('DEL', k('p', asid), k('pb', asid))
  return fail(code, message)
end
if redis.call('EXISTS', k('s', asid)) == 0 then
  return refuse('unauthorized', 'this connection has no session')
end
if id == '' then id = redis.call('HGET', k('byname', room), name) or '' end
local o = offer_table(id)
if not o or o.room ~= room then
  return refuse('not_found', 'cannot answer: no such offer in this room')
end
if name ~= '' and name ~= o.oname then
  return refuse('invalid_payload', "offererUserName does not match the offer's owner")
end
if o.offerer == asid then return refuse('forbidden', 'cannot answer your own offer') end
if o.answerer ~= '' then
  return refuse('offer_taken', 'cannot answer: offer ' .. id .. ' already taken')
end
if redis.call('EXISTS', k('b', asid)) == 1 then
  return refuse('busy', 'cannot answer: this session already has a call')
end
unwait(o)
redis.call('HSET', k('o', id), 'answerer', asid, 'aname', aname, 'atype', ARGV[5],
  'asdp', ARGV[6])
redis.call('EXPIRE', k('o', id), ttl)
redis.call('SET', k('b', asid), id, 'EX', ttl)
redis.call('INCR', k('count', 'calls'))
o.answerer, o.aname, o.atype, o.asdp = asid, aname, ARGV[5], ARGV[6]
local held = redis.call('LRANGE', k('p', asid), 0, -1)
redis.call('DEL', k('p', asid), k('pb', asid))
if #held == 0 then held = cjson.decode('[]') end
return cjson.encode({offer = o, held = held})
