/**
 * WebRtcDialer's ICE servers: TURN credentials that expire within a minute are asked for again
 * (`refreshIce`) before a dial, so a tab open for hours redials with valid ones; fresh ones are
 * not; a failed refresh leaves the old ones and the dial still goes ahead. The signalling here
 * refuses at once, so each dial fails fast after the decision under test.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TabshardError } from '../../shared/errors.ts';
import type { Dialer } from '../../shared/transport/types.ts';
import { WebRtcDialer } from './webrtc.ts';

const refusing: Dialer = {
  kind: 'memory',
  dial: async () => {
    throw new TabshardError('TS_ERR_CONNECT_FAILED', 'no signalling here');
  },
};
const turnUntil = (expiry: number) => [{ urls: 'turn:t:1', username: `${expiry}:tab`, credential: 'c' }];
const now = () => Math.floor(Date.now() / 1000);

describe('WebRtcDialer ICE servers', () => {
  it('asks for fresh TURN credentials before a dial when the ones in use are about to expire', async () => {
    const asked: number[] = [];
    let fail = false;
    const dialer = new WebRtcDialer({
      signalling: refusing,
      refreshIce: async () => {
        asked.push(Date.now());
        if (fail) throw new Error('gateway away');
        return turnUntil(now() + 3600);
      },
    });
    const dial = () => assert.rejects(dialer.dial('webrtc+memory://n1'), { code: 'TS_ERR_CONNECT_FAILED' });
    dialer.useIceServers(turnUntil(now() + 3600));
    await dial();
    assert.equal(asked.length, 0, 'an hour left: not asked');
    dialer.useIceServers(turnUntil(now() + 30));
    await dial();
    assert.equal(asked.length, 1, '30 s left: asked once');
    await dial();
    assert.equal(asked.length, 1, 'the fresh ones are kept');
    dialer.useIceServers(turnUntil(now() - 5));
    fail = true;
    await dial(); // the refresh fails: the dial still happens, with what it had
    assert.equal(asked.length, 2);
    dialer.useIceServers([{ urls: 'stun:s:1' }]);
    await dial();
    assert.equal(asked.length, 2, 'STUN needs no credentials');
  });
});
