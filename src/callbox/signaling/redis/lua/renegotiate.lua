-- ARGV: prefix, sid, kind ('offer' | 'answer'), offer id hint ('' : none)
-- Returns '<offer id> <other sid>' or an error.
local sid, kind, hint = ARGV[2], ARGV[3], ARGV[4]
local bound = redis.call('GET', k('b', sid))
local f = bound and redis.call('HMGET', k('o', bound), 'offerer', 'answerer') or {}
if not bound or not f[2] or f[2] == '' then
  return fail('not_in_call', 'cannot renegotiate: not in a call')
end
if hint ~= '' and hint ~= bound then
  return fail('forbidden', 'offer ' .. hint .. ' is not your call')
end
local other = f[1]
if sid == f[1] then other = f[2] end
if kind == 'offer' then
  redis.call('SADD', k('r', bound), sid)
  redis.call('EXPIRE', k('r', bound), 86400)
elseif redis.call('SREM', k('r', bound), other) == 0 then
  return fail('forbidden', 'cannot renegotiate: no offer from the other side to answer')
end
return bound .. ' ' .. other
