import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RedisUrlError, parseRedisTarget } from './redis-target.js';
import { redactUrl } from './errors.js';

test('one server: the URL goes to ioredis as written', () => {
  assert.deepEqual(parseRedisTarget('redis://:pw@cache:6380/2'), { kind: 'single', url: 'redis://:pw@cache:6380/2' });
  assert.deepEqual(parseRedisTarget('rediss://cache'), { kind: 'single', url: 'rediss://cache' });
});

test('host names in any case, as DNS reads them', () => {
  assert.deepEqual((parseRedisTarget('redis+cluster://Redis-0.Example.com:6379,REDIS-1') as { nodes: unknown }).nodes, [
    { host: 'Redis-0.Example.com', port: 6379 },
    { host: 'REDIS-1', port: 6379 },
  ]);
});

test('a cluster: every seed node, credentials, TLS, the default port', () => {
  assert.deepEqual(parseRedisTarget('redis+cluster://a:7000,b,[::1]:7002'), {
    kind: 'cluster',
    nodes: [
      { host: 'a', port: 7000 },
      { host: 'b', port: 6379 },
      { host: '::1', port: 7002 },
    ],
    tls: false,
  });
  assert.deepEqual(parseRedisTarget('REDISS+CLUSTER://app:p%40ss:w@a:7000/'), { kind: 'cluster', nodes: [{ host: 'a', port: 7000 }], username: 'app', password: 'p@ss:w', tls: true });
});

test('Sentinel: its nodes (port 26379 by default), the primary group, the database', () => {
  assert.deepEqual(parseRedisTarget('redis+sentinel://:secret@s1,s2:26380/mymaster'), {
    kind: 'sentinel',
    sentinels: [
      { host: 's1', port: 26379 },
      { host: 's2', port: 26380 },
    ],
    name: 'mymaster',
    db: 0,
    password: 'secret',
    tls: false,
  });
  assert.equal((parseRedisTarget('rediss+sentinel://s1/my%20primary/3') as { name: string }).name, 'my primary');
  assert.equal((parseRedisTarget('rediss+sentinel://s1/m/3') as { db: number }).db, 3);
});

test('Sentinels that ask for credentials of their own: sentinelUsername and sentinelPassword', () => {
  const target = parseRedisTarget('redis+sentinel://:pw@s1/m?sentinelPassword=s%26cret&sentinelUsername=watcher');
  assert.deepEqual(
    { password: (target as { password?: string }).password, sentinelPassword: (target as { sentinelPassword?: string }).sentinelPassword, sentinelUsername: (target as { sentinelUsername?: string }).sentinelUsername },
    { password: 'pw', sentinelPassword: 's&cret', sentinelUsername: 'watcher' },
  );
  assert.equal((parseRedisTarget('redis+sentinel://s1/m/2?sentinelPassword=x') as { db: number }).db, 2);
});

test('?keyPrefix= in every form; a server\'s other parameters stay in its URL, for ioredis', () => {
  assert.deepEqual(parseRedisTarget('redis://:pw@cache:6379/2?keyPrefix=prod:tg:&family=6'), { kind: 'single', url: 'redis://:pw@cache:6379/2?family=6', keyPrefix: 'prod:tg:' });
  assert.deepEqual(parseRedisTarget('redis://cache?keyPrefix=staging/'), { kind: 'single', url: 'redis://cache', keyPrefix: 'staging/' });
  assert.deepEqual(parseRedisTarget('redis://cache?family=4'), { kind: 'single', url: 'redis://cache?family=4' });
  assert.equal(parseRedisTarget('redis+cluster://a:1?keyPrefix=team-a.').keyPrefix, 'team-a.');
  assert.equal(parseRedisTarget('redis+sentinel://s1/m?sentinelPassword=x&keyPrefix=b:').keyPrefix, 'b:');
});

test('what is refused, and why', () => {
  const refused: Array<[string, RegExp]> = [
    ['http://cache:6379', /expected redis:\/\/, rediss:\/\//],
    ['cache:6379', /expected/],
    ['redis+cluster://', /at least one HOST:PORT/],
    ['redis+cluster://a:1,,b:2', /"" is no HOST:PORT/],
    ['redis+cluster://a:99999', /"a:99999" is no HOST:PORT/],
    ['redis+cluster://a:1/0', /takes no path/],
    ['redis+cluster://a:1?tls=true', /redis\+cluster:\/\/\.\.\.: unknown parameter "tls" \(it takes keyPrefix\)/],
    ['redis+cluster://a:1/?sentinelPassword=x', /unknown parameter "sentinelPassword"/],
    ['redis://a:1/0?keyPrefix=a{b}', /keyPrefix must be 1 to 64 letters, digits and : _ \. - \//],
    ['redis+cluster://a:1?keyPrefix=', /keyPrefix must be/],
    [`redis+sentinel://s1/m?keyPrefix=${'x'.repeat(65)}`, /keyPrefix must be/],
    ['redis://a:1?keyPrefix=a&keyPrefix=b', /redis:\/\/\.\.\.: keyPrefix given twice/],
    ['redis+sentinel://s1', /primary group Sentinel watches is missing/],
    ['redis+sentinel://s1/', /primary group Sentinel watches is missing/],
    ['redis+sentinel://s1/m/x', /expected a database number/],
    ['redis+sentinel://s1/m/1/2', /expected a database number/],
    ['redis+sentinel://:%zz@s1/m', /not percent-encoded/],
    // A secret badly encoded is named, never shown.
    ['redis+cluster://u:Zm9v%zz@a:1', /^the password is not percent-encoded correctly$/],
    ['redis+sentinel://s1/m?sentinelPassword=Zm9v%zz', /^sentinelPassword is not percent-encoded correctly$/],
    ['redis+cluster://a:0', /"a:0" is no HOST:PORT/],
    // A password cut by its own `/`: the message shows no piece of it.
    ['redis+sentinel://:Zm9v/YmFy@s1/m', /^a host is no HOST:PORT \(a user or password holding \/ \? # @ or : must be percent-encoded/],
    ['redis+cluster://:ab?cd@a:1', /^a host is no HOST:PORT \(a user or password/],
    ['redis://u:sec/ret@cache:6379', /^not a URL \(a user or password holding/],
    ['redis://:ab?cd@cache:6379', /^not a URL \(a user or password holding/],
    ['redis+sentinel://s1/m?password=x', /unknown parameter "password" \(it takes keyPrefix, sentinelUsername, sentinelPassword\)/],
    ['redis+sentinel://s1/m?sentinelPassword=a&sentinelPassword=b', /sentinelPassword given twice/],
    ['redis+sentinel://s1/m#x', /takes no fragment/],
  ];
  for (const [url, message] of refused) {
    assert.throws(() => parseRedisTarget(url), (err: Error) => err instanceof RedisUrlError && message.test(err.message) && !/Zm9v|YmFy|sec\/ret|cd@/.test(err.message), url);
  }
});

test('a URL of several hosts loses its password in messages, as any other', () => {
  assert.equal(redactUrl('redis+cluster://app:s3cret@a:7000,b:7001'), 'redis+cluster://***@a:7000,b:7001');
  assert.equal(redactUrl('redis+sentinel://:s3cret@s1,s2/m'), 'redis+sentinel://:***@s1,s2/m');
  // A password holding an unencoded `/` (base64): no piece of it stays.
  assert.equal(redactUrl('redis+sentinel://:Zm9v/YmFy@s1,s2/m'), 'redis+sentinel://***@s1,s2/m');
  assert.equal(redactUrl('redis://u:sec/ret@cache:6379'), 'redis://***@cache:6379');
  assert.equal(redactUrl('redis+cluster://a:7000,b:7001'), 'redis+cluster://a:7000,b:7001');
  // Values mistyped (a scheme without its slashes, none at all): the password is still not shown.
  assert.equal(redactUrl('redis:/:s3cret@redis.internal:6379'), 'redis:/***@redis.internal:6379');
  assert.equal(redactUrl(':s3cret@redis.internal:6379'), '***@redis.internal:6379');
  assert.equal(redactUrl('postgresql//app:s3cret@db/tg'), '***@db/tg');
  assert.equal(redactUrl('redis://user@cache:6379'), 'redis://user@cache:6379');
  // Not URL-shaped at all (a password where the URL belongs, a key=value connection string): nothing of it is shown.
  assert.equal(redactUrl('S3cretPassword'), '***');
  assert.equal(redactUrl('./tollgate.db'), './tollgate.db', 'a relative path, its sqlite: forgotten, is shown');
  assert.equal(redactUrl('/9j4S3cret+base64'), '***', 'a base64 password may begin with /');
  assert.equal(redactUrl('host=db user=app password=S3cret dbname=tg'), '***');
  assert.equal(redactUrl('postgres://app@db/tg?sslmode=require&password=S3cret'), 'postgres://app@db/tg?sslmode=require&password=***');
  assert.equal(redactUrl('redis://:s3cret@cache:6379'), 'redis://:***@cache:6379');
  assert.equal(redactUrl('redis+sentinel://:s3cret@s1:1,s2:2/m?sentinelPassword=s3cret2'), 'redis+sentinel://***@s1:1,s2:2/m?sentinelPassword=***');
  assert.equal(redactUrl('redis+sentinel://s1/m?sentinelUsername=u&sentinelPassword=s3cret'), 'redis+sentinel://s1/m?sentinelUsername=u&sentinelPassword=***');
});

test('a password badly percent-encoded in one server\'s URL is refused, naming it (ioredis threw a bare "URI malformed")', () => {
  assert.throws(
    () => parseRedisTarget('redis://:S3c%ZZret@127.0.0.1:6379'),
    (err: Error) => err instanceof RedisUrlError && err.message === 'the password is not percent-encoded correctly',
  );
  assert.throws(() => parseRedisTarget('redis://b%ZZob:pw@127.0.0.1:6379'), /the user is not percent-encoded correctly/);
});
