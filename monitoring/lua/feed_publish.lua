local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0)
  redis.call('DEL', KEYS[2])
end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local frame = '{"type":' .. ARGV[2] .. ',"topic":' .. ARGV[3] .. ',"seq":' .. seq .. ',"epoch":"' .. epoch ..
  '","timestamp":' .. ARGV[4] .. ',"data":' .. ARGV[5] .. '}'
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], seq .. '-0', 'f', frame)
if ARGV[7] == '1' then redis.call('HSET', KEYS[1], 'snapshot_seq', seq, 'snapshot', frame) end
return {seq, epoch, frame}
