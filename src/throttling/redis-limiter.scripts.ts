/**
 * Lua run inside Redis. Every limit is checked and raised in one script so that parallel requests
 * on any number of replicas cannot all read "room left" before any of them writes (the race of
 * ATTACKS.md 1 and 2). Time comes from Redis `TIME`, so replicas with skewed clocks agree.
 *
 * The reserve script takes the keys of one hash-tag group (a cluster) or of the whole attempt (a
 * single node), in this layout:
 *   KEYS: block keys, then one sliding-log key per limit, then, when the account is in the group,
 *         its failure window, lockout key and lockout repeat counter.
 *   ARGV: reservation id, number of block keys, number of limits, '1' when the account is in the
 *         group, then limit and window ms per limit, then the account's limit, window ms,
 *         LOCKOUT_BASE ms, LOCKOUT_MAX ms and how long the repeat counter is remembered in ms.
 * It answers { verdict, index, retry-after seconds, now ms }: for `blocked` and `throttled` the
 * index is the 1-based block or limit that refused; for `locked` it is 1 when this attempt
 * started the lockout. A locked attempt keeps its request-rate slots (see countRequest).
 */
export const RESERVE_SCRIPT = `
if redis.replicate_commands then redis.replicate_commands() end

local id = ARGV[1]
local blockCount = tonumber(ARGV[2])
local limitCount = tonumber(ARGV[3])
local hasAccount = ARGV[4] == '1'
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local function seconds(ms)
  local whole = math.ceil(ms / 1000)
  if whole < 1 then return 1 end
  return whole
end

local function isFull(key, limit, window)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  return redis.call('ZCARD', key) >= limit
end

local function freesInMs(key, window)
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if oldest[2] == nil then return window end
  return tonumber(oldest[2]) + window - now
end

-- A locked answer still spends the attempt's request-rate slots (never its failure-budget
-- slots, whose keys end in ':failures'), so hammering a locked account is throttled per source
-- like anything else instead of costing a padded 401 and an audit row each time.
local function countRequest()
  for j = 1, limitCount do
    local key = KEYS[blockCount + j]
    if string.sub(key, -9) ~= ':failures' then
      redis.call('ZADD', key, now, id)
      redis.call('PEXPIRE', key, ARGV[4 + 2 * j])
    end
  end
end

for i = 1, blockCount do
  local ttl = redis.call('PTTL', KEYS[i])
  if ttl > 0 then return { 'blocked', i, seconds(ttl), now } end
end

for j = 1, limitCount do
  local key = KEYS[blockCount + j]
  local limit = tonumber(ARGV[3 + 2 * j])
  local window = tonumber(ARGV[4 + 2 * j])
  if isFull(key, limit, window) then
    return { 'throttled', j, seconds(freesInMs(key, window)), now }
  end
end

local accountArg = 5 + 2 * limitCount
local accountKey = blockCount + limitCount + 1
if hasAccount then
  local windowKey = KEYS[accountKey]
  local lockKey = KEYS[accountKey + 1]
  local countKey = KEYS[accountKey + 2]
  local limit = tonumber(ARGV[accountArg])
  local window = tonumber(ARGV[accountArg + 1])
  local base = tonumber(ARGV[accountArg + 2])
  local max = tonumber(ARGV[accountArg + 3])
  local countTtl = tonumber(ARGV[accountArg + 4])

  local lockTtl = redis.call('PTTL', lockKey)
  if lockTtl > 0 then
    countRequest()
    return { 'locked', 0, seconds(lockTtl), now }
  end

  if isFull(windowKey, limit, window) then
    local repeats = redis.call('INCR', countKey)
    redis.call('PEXPIRE', countKey, countTtl)
    local duration = base * 2 ^ (repeats - 1)
    if duration > max then duration = max end
    local freesIn = freesInMs(windowKey, window)
    if freesIn > duration then duration = freesIn end
    duration = math.ceil(duration)
    redis.call('SET', lockKey, '1', 'PX', duration)
    countRequest()
    return { 'locked', 1, seconds(duration), now }
  end
end

for j = 1, limitCount do
  local key = KEYS[blockCount + j]
  redis.call('ZADD', key, now, id)
  redis.call('PEXPIRE', key, ARGV[4 + 2 * j])
end
if hasAccount then
  redis.call('ZADD', KEYS[accountKey], now, id)
  redis.call('PEXPIRE', KEYS[accountKey], ARGV[accountArg + 1])
end
return { 'allowed', 0, 0, now }
`;

/** Sets a block for ARGV[1] ms unless a longer one is already in place. */
export const BLOCK_SCRIPT = `
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then
  redis.call('SET', KEYS[1], '1', 'PX', ms)
  return 1
end
return 0
`;
