-- Shared by every callbox script (prepended to each). Keys are built from the prefix in
-- ARGV[1]: callbox runs on one Redis (not Redis Cluster), where that is allowed.
local P = ARGV[1]
local function k(...)
  return P .. table.concat({...}, ':')
end

local function fail(code, message)
  return 'E:' .. code .. ':' .. message
end

-- an offer record as a table (nil when gone); candidates are their JSON texts
local function offer_table(id)
  if not id or id == '' then return nil end
  local h = redis.call('HGETALL', k('o', id))
  if #h == 0 then return nil end
  local o = {}
  for i = 1, #h, 2 do o[h[i]] = h[i + 1] end
  o.id = id
  o.candidates = redis.call('LRANGE', k('oc', id), 0, -1)
  return o
end

local function encode_offer(o)
  if not o then return '' end
  return cjson.encode(o)
end

-- the offer stops waiting: out of its room's list and weight
local function unwait(o)
  redis.call('ZREM', k('w', o.room), o.id)
  redis.call('ZREM', k('wall'), o.id)
  if redis.call('ZCARD', k('w', o.room)) == 0 then
    redis.call('DEL', k('wb', o.room))
  else
    redis.call('DECRBY', k('wb', o.room), tonumber(o.size))
  end
end

local function remove_offer(id)
  local o = offer_table(id)
  if not o then return nil end
  if o.answerer == '' then
    unwait(o)
  else
    redis.call('DECR', k('count', 'calls'))
  end
  redis.call('DEL', k('o', id), k('oc', id), k('r', id))
  redis.call('HDEL', k('byname', o.room), o.oname)
  for _, sid in ipairs({o.offerer, o.answerer}) do
    if sid ~= '' and redis.call('GET', k('b', sid)) == id then
      redis.call('DEL', k('b', sid))
    end
  end
  return o
end

-- Number a letter for session sid, keep it in its log (bounded), and publish it to the node
-- holding the session's socket when that is not the poster. Returns
-- 'seq node socket numbered', or '' when the session's mailbox is gone.
local function post_letter(sid, body, size, poster, max_entries, max_bytes, ttl)
  local m = k('m', sid)
  local f = redis.call('HMGET', m, 'node', 'socket', 'resumable')
  if not f[3] then return '' end
  local seq = redis.call('HINCRBY', m, 'seq', 1)
  local letter = '[' .. seq .. ',' .. body .. ']'
  local log = k('ml', sid)
  -- kept as '<size> <letter>': the size the caller weighed it at, which trimming gives back
  redis.call('RPUSH', log, size .. ' ' .. letter)
  local bytes = redis.call('HINCRBY', m, 'lbytes', size)
  local n = redis.call('LLEN', log)
  while n > max_entries or (bytes > max_bytes and n > 1) do
    local old = redis.call('LPOP', log)
    bytes = redis.call('HINCRBY', m, 'lbytes', -tonumber(string.match(old, '^(%d+) ')))
    n = n - 1
  end
  redis.call('EXPIRE', log, ttl)
  if f[1] ~= '' and f[1] ~= poster then
    redis.call('PUBLISH', k('to', f[1]), sid .. ' ' .. f[3] .. ' ' .. letter)
  end
  return seq .. ' ' .. f[1] .. ' ' .. f[2] .. ' ' .. f[3]
end
