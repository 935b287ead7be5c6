// The Lua side of the Redis peer store (redis-peer-store.ts): one script, run with EVALSHA, so that one announce is
// one round trip and every rule of swarm-registry.ts is checked and applied atomically on the server.
//
// Keys of swarm S (all tagged `{S}`, so a Redis Cluster would keep them on one slot):
//   P{S}:a   sorted set of downloading peers' `ip:port`, scored by last-seen wall ms (expire after `exp`)
//   P{S}:c   sorted set of complete peers (last announce said progress 1), same scores (expire after `cexp`)
//   P{S}:r   hash `ip:port` -> record `ip|port|progress|event|updatedIso|blockSize|hex|dropped|wire` (wire: the peer
//            wire's port or ''; records written before issue 14 have 8 fields and read as no wire)
//   P{S}:m   hash: `bf` bitfield bytes kept, `bound` file-bytes bound, `by` the record that set it
//   P{S}:i:<ip>  sorted set of that address's peers, scored by last seen (the per-address cap evicts its first)
// Two sorted sets, not one with the state in the record: each has one expiry, so ZRANGEBYSCORE up to one cutoff
// finds exactly the expired members (no scan), as the in-memory store's two maps do.
// Global keys (tag `{P-global}`): P{..}:t hash swarms/peers/bf totals; P{..}:n hash S -> "peers bitfieldBytes" as
// last accounted; P{..}:due sorted set S -> the wall ms at which S next has a peer to expire (the sweep's work list).
// Totals move only by the difference between a swarm's accounted and actual counts, so a swarm whose keys expired
// by TTL (every tracker down longer than its TTL) is corrected when the sweep or an announce next looks at it.
//
// Time is the wall-clock ms the caller passes (ARGV), never TIME: the script is deterministic given its arguments,
// so it replicates (and the several tracker processes agree on one clock to within NTP). Random picks use
// ZRANDMEMBER plus a Park-Miller generator seeded from ARGV (not math.random, whose seeding differs by version).
//
// ARGV: 1 op (announce | list | remove | sweep), 2 now ms, 3 swarm id, 4 key prefix, 5 limits
// "exp cexp minGap perSwarm perAddr peers swarms bfSwarm bf ttl sweepBatch", 6 random seed, then per op:
//   announce: 7 ip, 8 port, 9 progress, 10 event, 11 updatedIso, 12 blockSize, 13 hex, 14 sample, 15 wire ('' for none)
//   list: 7 exclude key ('' for none), 8 n        remove: 7 the peer's key        sweep: nothing (swarm id '')
// Replies: announce / list: {code, number, record...}; code ok | swarm | total | geometry | too-soon (number =
// retry-after ms) | full-swarms | full-peers | list. remove: {removed 0/1}. sweep: {swarms swept}.

export const PEER_STORE_LUA = `
local op, now, sid, P = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local L = {}
for v in string.gmatch(ARGV[5], '%S+') do L[#L + 1] = tonumber(v) end
local EXP, CEXP, GAP, PER_SWARM, PER_ADDR, MAX_PEERS, MAX_SWARMS, BF_SWARM, BF_ALL, TTL, BATCH =
  L[1], L[2], L[3], L[4], L[5], L[6], L[7], L[8], L[9], L[10], L[11]
local seed = tonumber(ARGV[6]) % 2147483646 + 1
local function rnd()
  seed = (seed * 48271) % 2147483647
  return (seed - 1) / 2147483646
end
local G = P .. '{' .. P .. 'global}:'
local TOT, ACC, DUE = G .. 't', G .. 'n', G .. 'due'
local function num(x) return string.format('%.0f', x) end

local function keys(id)
  local b = P .. '{' .. id .. '}:'
  return { id = id, a = b .. 'a', c = b .. 'c', r = b .. 'r', m = b .. 'm', i = b .. 'i:' }
end

local function split(rec)
  local f, start = {}, 1
  while true do
    local j = string.find(rec, '|', start, true)
    if not j then f[#f + 1] = string.sub(rec, start); break end
    f[#f + 1] = string.sub(rec, start, j - 1)
    start = j + 1
  end
  return { ip = f[1], port = f[2], progress = f[3], event = f[4], updated = f[5], bs = f[6], hex = f[7], dropped = f[8], wire = f[9] or '' }
end

-- Forget record key of swarm s: its sorted sets, its address's set, its bitfield bytes and the bound it set.
local function drop(s, key)
  local rec = redis.call('HGET', s.r, key)
  redis.call('ZREM', s.a, key)
  redis.call('ZREM', s.c, key)
  if not rec then return false end
  local f = split(rec)
  redis.call('HDEL', s.r, key)
  redis.call('ZREM', s.i .. f.ip, key)
  if f.hex ~= '' then redis.call('HINCRBY', s.m, 'bf', -string.len(f.hex)) end
  if redis.call('HGET', s.m, 'by') == key then redis.call('HDEL', s.m, 'bound', 'by') end
  return true
end

local function dropOlder(s, zkey, cutoff)
  local old = redis.call('ZRANGEBYSCORE', zkey, '-inf', num(cutoff))
  for _, key in ipairs(old) do drop(s, key) end
end

local function sweepSwarm(s)
  dropOlder(s, s.a, now - EXP)
  dropOlder(s, s.c, now - CEXP)
end

local function counts(s)
  local n = redis.call('ZCARD', s.a) + redis.call('ZCARD', s.c)
  local bf = tonumber(redis.call('HGET', s.m, 'bf') or '0')
  return n, bf
end

local function accounted(id)
  local v = redis.call('HGET', ACC, id)
  if not v then return 0, 0 end
  local sp = string.find(v, ' ', 1, true)
  return tonumber(string.sub(v, 1, sp - 1)), tonumber(string.sub(v, sp + 1))
end

-- Bring the totals, the accounted counts, the sweep's due time and the keys' TTLs in line with swarm s.
local function settle(s)
  local n, bf = counts(s)
  local an, abf = accounted(s.id)
  if n ~= an or bf ~= abf then
    local ds = 0
    if an == 0 and n > 0 then ds = 1 elseif an > 0 and n == 0 then ds = -1 end
    if ds ~= 0 then redis.call('HINCRBY', TOT, 'swarms', ds) end
    if n ~= an then redis.call('HINCRBY', TOT, 'peers', n - an) end
    if bf ~= abf then redis.call('HINCRBY', TOT, 'bf', bf - abf) end
  end
  if n == 0 then
    redis.call('HDEL', ACC, s.id)
    redis.call('ZREM', DUE, s.id)
    redis.call('DEL', s.a, s.c, s.r, s.m)
    return
  end
  if n ~= an or bf ~= abf then redis.call('HSET', ACC, s.id, n .. ' ' .. bf) end
  local due = nil
  local fa = redis.call('ZRANGE', s.a, 0, 0, 'WITHSCORES')
  if fa[2] then due = tonumber(fa[2]) + EXP end
  local fc = redis.call('ZRANGE', s.c, 0, 0, 'WITHSCORES')
  if fc[2] and (due == nil or tonumber(fc[2]) + CEXP < due) then due = tonumber(fc[2]) + CEXP end
  redis.call('ZADD', DUE, num(due), s.id)
end

local function touch(s, ip)
  for _, k in ipairs({ s.a, s.c, s.r, s.m, s.i .. ip }) do redis.call('PEXPIRE', k, TTL) end
end

-- Sweep up to BATCH swarms whose next expiry is due (the in-memory store's forced or timed sweep).
local function sweepDue()
  local ids = redis.call('ZRANGEBYSCORE', DUE, '-inf', num(now), 'LIMIT', 0, BATCH)
  for _, id in ipairs(ids) do
    local s = keys(id)
    sweepSwarm(s)
    settle(s)
  end
  return #ids
end

local function total(field)
  return tonumber(redis.call('HGET', TOT, field) or '0')
end

-- k members of zkey at random, never excl (uniform: draw k + 1 and drop excl, or a random one of them).
local function pick(zkey, k, excl, out)
  if k <= 0 then return end
  local want = k
  if excl then want = k + 1 end
  local got = redis.call('ZRANDMEMBER', zkey, want)
  if excl then
    local idx = nil
    for i, v in ipairs(got) do if v == excl then idx = i end end
    if idx == nil then idx = 1 + math.floor(rnd() * #got) end
    table.remove(got, idx)
  end
  for _, v in ipairs(got) do out[#out + 1] = v end
end

-- Up to n live records of swarm s but exclude, a uniform sample over both sets (hypergeometric split).
local function sample(s, n, exclude, reply)
  if n <= 0 then return reply end
  local inA, inC = false, false
  if exclude ~= '' then
    inA = redis.call('ZSCORE', s.a, exclude) ~= false
    if not inA then inC = redis.call('ZSCORE', s.c, exclude) ~= false end
  end
  local ra = redis.call('ZCARD', s.a) - (inA and 1 or 0)
  local rc = redis.call('ZCARD', s.c) - (inC and 1 or 0)
  local m = math.min(n, ra + rc)
  local ka, xa, xc = 0, ra, rc
  for _ = 1, m do
    if rnd() * (xa + xc) < xa then ka = ka + 1; xa = xa - 1 else xc = xc - 1 end
  end
  local chosen = {}
  pick(s.a, ka, inA and exclude or nil, chosen)
  pick(s.c, m - ka, inC and exclude or nil, chosen)
  if #chosen == 0 then return reply end
  -- HMGET in chunks: Lua's unpack() stops at a few thousand values.
  for from = 1, #chosen, 500 do
    local recs = redis.call('HMGET', s.r, unpack(chosen, from, math.min(from + 499, #chosen)))
    for _, rec in ipairs(recs) do if rec then reply[#reply + 1] = rec end end
  end
  return reply
end

if op == 'sweep' then return { sweepDue() } end

local s = keys(sid)

if op == 'remove' then
  -- No sweep: remove has no clock of its own (expiry is the announces' and the sweep's).
  local had = drop(s, ARGV[7])
  settle(s)
  return { had and 1 or 0 }
end

sweepSwarm(s)

if op == 'list' then
  local reply = sample(s, tonumber(ARGV[8]), ARGV[7], { 'list', 0 })
  settle(s)
  return reply
end

-- announce
local ip, port, progress, event, updated, bs, hex, n = ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12], ARGV[13], tonumber(ARGV[14])
local wire = ARGV[15] or ''
local key = ip .. ':' .. port
if string.find(ip, ':', 1, true) then key = '[' .. ip .. ']:' .. port end
local function refuse(code, x)
  settle(s)
  return sample(s, n, key, { code, x })
end

local existing = redis.call('HGET', s.r, key)
if existing then
  local f = split(existing)
  local same
  if f.dropped == '1' then same = hex ~= '' else same = f.hex == hex and f.bs == bs end
  if same and f.progress == progress and f.event == event and f.wire == wire then
    local seen = redis.call('ZSCORE', s.a, key) or redis.call('ZSCORE', s.c, key)
    local gap = now - tonumber(seen)
    if gap < GAP then return refuse('too-soon', GAP - gap) end
  end
end

local sn, sbf = counts(s)
local an, abf = accounted(sid)
if not existing then
  -- Totals as they will be once this swarm is settled (its sweep above may have dropped some).
  local function peersNow() return total('peers') - an + sn end
  if peersNow() >= MAX_PEERS then
    sweepDue(); sn, sbf = counts(s); an, abf = accounted(sid)
    if peersNow() >= MAX_PEERS then return refuse('full-peers', 0) end
  end
end
if sn == 0 then
  local function swarmsNow() return total('swarms') - (an > 0 and 1 or 0) end
  if swarmsNow() >= MAX_SWARMS then
    sweepDue(); sn, sbf = counts(s); an, abf = accounted(sid)
    if swarmsNow() >= MAX_SWARMS then return refuse('full-swarms', 0) end
  end
elseif not existing then
  -- One address filling a swarm (RELIABILITY "tracker abuse"): its own stalest peer makes room, nobody else's.
  if redis.call('ZCARD', s.i .. ip) >= PER_ADDR then
    local stalest = redis.call('ZRANGE', s.i .. ip, 0, 0)
    if stalest[1] then drop(s, stalest[1]) end
  end
  if redis.call('ZCARD', s.a) + redis.call('ZCARD', s.c) >= PER_SWARM then
    -- A full swarm makes room by dropping its stalest complete peer if that one is past the ordinary expiry.
    local fc = redis.call('ZRANGE', s.c, 0, 0, 'WITHSCORES')
    if fc[2] and now - tonumber(fc[2]) >= EXP then drop(s, fc[1]) end
    if redis.call('ZCARD', s.a) + redis.call('ZCARD', s.c) >= PER_SWARM then return refuse('full-peers', 0) end
  end
end

drop(s, key)
local code, keptHex, keptBs, dropped = 'ok', '', '', '0'
if hex ~= '' then
  local bytes = string.len(hex)
  local bound = redis.call('HGET', s.m, 'bound')
  sn, sbf = counts(s)
  if bound and bytes > math.ceil(math.ceil(tonumber(bound) / tonumber(bs)) / 8) * 2 then code = 'geometry'
  elseif sbf + bytes > BF_SWARM then code = 'swarm'
  elseif total('bf') - abf + sbf + bytes > BF_ALL then code = 'total' end
  if code == 'ok' then
    if not bound then
      redis.call('HSET', s.m, 'bound', num((bytes / 2) * 8 * tonumber(bs)), 'by', key)
    end
    redis.call('HINCRBY', s.m, 'bf', bytes)
    keptHex, keptBs = hex, bs
  else
    dropped = '1'
  end
end
redis.call('HSET', s.r, key, table.concat({ ip, port, progress, event, updated, keptBs, keptHex, dropped, wire }, '|'))
if tonumber(progress) == 1 then redis.call('ZADD', s.c, ARGV[2], key) else redis.call('ZADD', s.a, ARGV[2], key) end
redis.call('ZADD', s.i .. ip, ARGV[2], key)
touch(s, ip)
settle(s)
return sample(s, n, key, { code, 0 })
`;
