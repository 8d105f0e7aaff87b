local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then return nil end
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
if #last == 0 then return nil end
return {last[1][1], epoch, last[1][2][2]}
