/**
 * ICE server configuration (turn.ts): the `--ice-servers` flag's checks, and the credentials
 * minted per peer — the TURN REST scheme (coturn's use-auth-secret), which the real coturn in
 * server/transports/turn.test.ts and e2e/turn.test.ts accepts and refuses past expiry. Untrusted
 * `iceServers` in a cluster info (shared/cluster.ts) are checked too.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { parseClusterInfo } from '../../shared/cluster.ts';
import { TabshardError } from '../../shared/errors.ts';
import { Ring } from '../../shared/ring.ts';
import { IceConfig, parseIceUrls, turnCredential } from './turn.ts';

const code = (c: string) => (e: unknown) => e instanceof TabshardError && e.code === c;

describe('ICE servers and TURN credentials', () => {
  it('parses --ice-servers: stun/turn URLs, commas, spaces; a bad URL or TURN without a secret is refused', () => {
    assert.deepEqual(parseIceUrls(' stun:a.example:3478, turn:10.0.0.2:3478?transport=tcp ', 's'), [
      'stun:a.example:3478',
      'turn:10.0.0.2:3478?transport=tcp',
    ]);
    assert.deepEqual(parseIceUrls('stun:a:1', undefined), ['stun:a:1']);
    for (const bad of ['http://a:1', 'turn:', 'stun:a b', 'turn:a:1?transport=sctp'])
      assert.throws(() => parseIceUrls(bad, 's'), code('TS_ERR_INVALID_ARGUMENT'), bad);
    assert.throws(
      () => parseIceUrls('turn:a:1', undefined),
      (e) => code('TS_ERR_INVALID_ARGUMENT')(e) && /--turn-secret/.test(String(e)),
    );
  });

  it('mints `<expiry>:<user>` and base64(HMAC-SHA1(secret, username)), living ttl seconds; STUN gets none', () => {
    const now = 1_700_000_000_500;
    const ice = new IceConfig(['stun:s:1', 'turn:t:2'], 'sekrit', 600, () => now);
    const [stun, turn] = ice.servers('tab-1');
    assert.deepEqual(stun, { urls: 'stun:s:1' });
    assert.equal(turn.urls, 'turn:t:2');
    assert.equal(turn.username, '1700000600:tab-1');
    assert.equal(turn.credential, createHmac('sha1', 'sekrit').update('1700000600:tab-1').digest('base64'));
    assert.deepEqual(turnCredential('sekrit', 'tab-1', 1700000600), {
      username: turn.username,
      credential: turn.credential,
    });
    assert.notEqual(turnCredential('other', 'tab-1', 1700000600).credential, turn.credential);
    assert.equal(new IceConfig([], undefined).empty, true);
  });

  it('a cluster info’s iceServers must be a short list of stun/turn entries of short strings', () => {
    const base = { ring: new Ring(['n1'], { version: 1 }).toJSON(), addresses: { n1: {} }, tables: [] };
    const info = parseClusterInfo({ ...base, iceServers: [{ urls: 'turn:t:1', username: 'u', credential: 'c' }] });
    assert.deepEqual(info.iceServers, [{ urls: 'turn:t:1', username: 'u', credential: 'c' }]);
    for (const iceServers of [
      'turn:t:1',
      [{ urls: 'http://t' }],
      [{ urls: 'turn:t:1', username: 7 }],
      [{ urls: 'turn:t:1', credential: 'x'.repeat(513) }],
      Array.from({ length: 17 }, () => ({ urls: 'stun:s:1' })),
    ])
      assert.throws(() => parseClusterInfo({ ...base, iceServers }), code('TS_ERR_FRAME_MALFORMED'));
  });
});
