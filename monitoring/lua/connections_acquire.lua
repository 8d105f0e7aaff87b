local function live_sum(hash, me, alive_prefix)
  local total = 0
  local rows = redis.call('HGETALL', hash)
  for i = 1, #rows, 2 do
    local owner, count = rows[i], tonumber(rows[i + 1])
    if owner == me or redis.call('EXISTS', alive_prefix .. owner) == 1 then
      total = total + count
    else
      redis.call('HDEL', hash, owner)
    end
  end
  return total
end
redis.call('SET', ARGV[4] .. ARGV[1], 1, 'EX', ARGV[5])
if live_sum(KEYS[1], ARGV[1], ARGV[4]) >= tonumber(ARGV[2]) then return 'total_cap' end
if live_sum(KEYS[2], ARGV[1], ARGV[4]) >= tonumber(ARGV[3]) then return 'ip_cap' end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('EXPIRE', KEYS[2], 86400)
return 'accepted'
