local epoch = redis.call('HGET', KEYS[1], 'epoch')
if (not epoch) or epoch ~= ARGV[1] then return {'epoch_changed'} end
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq'))
local since = tonumber(ARGV[2])
if since > seq then return {'future_seq'} end
if since == seq then return {'ok'} end
if seq - since > tonumber(ARGV[3]) then return {'history_trimmed'} end
local entries = redis.call('XRANGE', KEYS[2], (since + 1) .. '-0', '+')
if #entries == 0 or entries[1][1] ~= (since + 1) .. '-0' then return {'history_trimmed'} end
local out = {'ok'}
for _, entry in ipairs(entries) do
  out[#out + 1] = entry[1]
  out[#out + 1] = entry[2][2]
end
return out
