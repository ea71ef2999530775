/**
 * What the WebRTC data path assumes of Chromium's RTCDataChannel (shared/transport/webrtc-peer.ts),
 * checked in the real browser with two peer connections in one blank page: `send` copies the
 * bytes of a view before it returns (so chunks may be cut into one reused buffer), the channel
 * has the buffered-amount-low event, and the negotiated SCTP maximum message is 256 KiB.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Browser, chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS, DISABLE_FEATURES, playwrightDisableFeatures } from './harness.ts';

describe('Chromium RTCDataChannel', () => {
  let browser: Browser;
  before(async () => {
    const pw = await playwrightDisableFeatures();
    const features = [...(pw ? pw.slice('--disable-features='.length).split(',') : []), ...DISABLE_FEATURES];
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [...CHROMIUM_ARGS, `--disable-features=${features.join(',')}`],
      ignoreDefaultArgs: pw ? [pw] : [],
    });
  });
  after(async () => {
    await browser?.close();
  });

  it('copies the bytes on send, has bufferedamountlow, and negotiates a 256 KiB maximum message', async () => {
    const page = await browser.newPage();
    const res = await page.evaluate(async () => {
      const a = new RTCPeerConnection({ iceServers: [] });
      const b = new RTCPeerConnection({ iceServers: [] });
      a.onicecandidate = (e) => e.candidate && b.addIceCandidate(e.candidate);
      b.onicecandidate = (e) => e.candidate && a.addIceCandidate(e.candidate);
      const dc = a.createDataChannel('copy');
      const incoming = new Promise<RTCDataChannel>((resolve) => {
        b.ondatachannel = (e) => resolve(e.channel);
      });
      await a.setLocalDescription();
      await b.setRemoteDescription(a.localDescription as RTCSessionDescriptionInit);
      await b.setLocalDescription();
      await a.setRemoteDescription(b.localDescription as RTCSessionDescriptionInit);
      const rc = await incoming;
      rc.binaryType = 'arraybuffer';
      await new Promise((resolve) => {
        if (dc.readyState === 'open') resolve(null);
        else dc.onopen = resolve;
      });
      const n = 100;
      const got = new Promise<number[]>((resolve) => {
        const wrong: number[] = [];
        let i = 0;
        rc.onmessage = (e) => {
          const m = new Uint8Array(e.data as ArrayBuffer);
          if (m.byteLength !== 65_536 || m.some((x) => x !== (i & 255))) wrong.push(i);
          if (++i === n) resolve(wrong);
        };
      });
      // One buffer, refilled right after every send, with MiBs queued behind it.
      const buf = new Uint8Array(128 * 1024);
      const view = buf.subarray(1000, 1000 + 65_536);
      let maxQueued = 0;
      for (let i = 0; i < n; i++) {
        view.fill(i & 255);
        dc.send(view);
        maxQueued = Math.max(maxQueued, dc.bufferedAmount);
      }
      buf.fill(0xee);
      const wrong = await got;
      const out = {
        wrong,
        maxQueued,
        lowEvent: typeof dc.bufferedAmountLowThreshold === 'number' && 'onbufferedamountlow' in dc,
        maxMessageSize: a.sctp?.maxMessageSize ?? 0,
      };
      a.close();
      b.close();
      return out;
    });
    await page.close();
    assert.deepEqual(res.wrong, [], 'every message kept the bytes it was sent with');
    assert.ok(res.maxQueued > 1024 * 1024, `sends were queued behind each other (${res.maxQueued} bytes)`);
    assert.equal(res.lowEvent, true);
    assert.equal(res.maxMessageSize, 256 * 1024);
  });
});
