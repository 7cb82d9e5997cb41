-- ARGV: prefix, sid. Returns JSON {session: {...} or false, offer: {...} or false}
local sid = ARGV[2]
local s = redis.call('HGETALL', k('s', sid))
local session = false
if #s > 0 then
  session = {}
  for i = 1, #s, 2 do session[s[i]] = s[i + 1] end
  for _, key in ipairs({session.k1, session.k2}) do
    if redis.call('HGET', k('n', session.room), key) == sid then
      redis.call('HDEL', k('n', session.room), key)
    end
  end
  redis.call('DEL', k('s', sid))
  redis.call('DECR', k('count', 'sessions'))
end
redis.call('DEL', k('p', sid), k('pb', sid))
local bound = redis.call('GET', k('b', sid))
local offer = false
if bound then offer = remove_offer(bound) or false end
return cjson.encode({session = session, offer = offer})
