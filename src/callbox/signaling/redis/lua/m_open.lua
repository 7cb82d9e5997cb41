-- ARGV: prefix, sid, node, socket, resumable ('1' | '0'), address, identity, room, token key
--       ('' : none), ttl
local sid, node, ttl = ARGV[2], ARGV[3], tonumber(ARGV[10])
local m = k('m', sid)
redis.call('DEL', m, k('ml', sid), k('ma', sid), k('mq', sid))
redis.call('HSET', m, 'node', node, 'socket', ARGV[4], 'resumable', ARGV[5],
  'address', ARGV[6], 'identity', ARGV[7], 'room', ARGV[8], 'token', ARGV[9], 'seq', 0,
  'away', 1, 'held', '', 'lbytes', 0, 'ahigh', 0, 'abytes', 0, 'rate', '')
redis.call('EXPIRE', m, ttl)
redis.call('SADD', k('node', node), sid)
if ARGV[9] ~= '' then redis.call('SET', k('tok', ARGV[9]), sid, 'EX', ttl) end
return 'ok'
