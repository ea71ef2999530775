/**
 * A node's raw handler (node.ts, RawHandler): without one injected, a message starting 0xEC is a
 * frame of an unsupported version like any other; an injected handler answers what it takes
 * before decoding (uncounted) and leaves the rest to the frame decoder; one that throws costs the
 * sender a coded ERROR while the node keeps serving. Neither `tabshard server` nor `start` has a
 * flag that sets one.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { decodeError, encodeJson } from '../../shared/protocol/control.ts';
import { decodeFrame, MsgType } from '../../shared/protocol/frame.ts';
import { MemoryNetwork } from '../../shared/transport/memory.ts';
import type { Conn } from '../../shared/transport/types.ts';
import { type RawHandler, ServerNode } from './node.ts';

const BIN = fileURLToPath(new URL('../../bin/tabshard.mjs', import.meta.url));

/** A node `id` on a fresh network, and a bare connection to it that collects what comes back. */
async function bare(id: string, rawHandler?: RawHandler) {
  const net = new MemoryNetwork({ seed: 5, maxDelay: 1 });
  const node = new ServerNode(id, { rawHandler });
  node.listen(net.listen(id));
  const conn: Conn = await net.dialer().dial(`memory://${id}`);
  const got: Uint8Array[] = [];
  conn.onmessage = (m) => got.push(Uint8Array.from(m));
  /** Sends `msg` and resolves with the next message that comes back. */
  const ask = async (msg: Uint8Array) => {
    const n = got.length;
    conn.send([msg]);
    while (got.length === n) await new Promise((r) => setTimeout(r, 1));
    return got[n];
  };
  const close = () => {
    conn.close();
    return node.close();
  };
  return { node, ask, close };
}

const raw = (...bytes: number[]) => Uint8Array.from(bytes);
/** A frame-header-long message (32 bytes) starting with `bytes`: long enough for its version to be read. */
const header = (...bytes: number[]) => {
  const m = new Uint8Array(32);
  m.set(bytes);
  return m;
};
const errorCode = (reply: Uint8Array) => {
  const f = decodeFrame(reply);
  assert.equal(f.type, MsgType.ERROR);
  return decodeError(f).code;
};
const stats = () => Uint8Array.from(Buffer.concat(encodeJson(MsgType.STATS, 7, {})));

describe('server node: raw handler', () => {
  it('has none unless injected: a 0xEC message is refused as an unsupported version', async () => {
    const s = await bare('plain');
    assert.equal(errorCode(await s.ask(header(0xec, 1))), 'TS_ERR_FRAME_VERSION');
    assert.equal(s.node.stats().errors, 1);
    await s.close();
  });

  it('answers what an injected handler takes before decoding, and decodes the rest', async () => {
    const seen: number[] = [];
    const s = await bare('echo', (msg, reply) => {
      seen.push(msg[0]);
      if (msg[0] !== 0xec) return false;
      reply(raw(42, msg.byteLength));
      return true;
    });
    assert.deepEqual(await s.ask(raw(0xec, 9, 9)), raw(42, 3));
    const before = s.node.stats().frames;
    // A frame is not the handler's: the node decodes and answers it (STATS of an open node).
    const reply = decodeFrame(await s.ask(stats()));
    assert.equal(reply.type, MsgType.STATS);
    assert.equal(reply.requestId, 7);
    // Neither is a message of another unknown version: refused as before.
    assert.equal(errorCode(await s.ask(header(0xed, 1))), 'TS_ERR_FRAME_VERSION');
    assert.deepEqual(seen, [0xec, 1, 0xed]);
    assert.equal(s.node.stats().frames, before + 2, 'taken messages are not counted as frames');
    await s.close();
  });

  it('answers a coded ERROR when the handler throws, and keeps serving', async () => {
    const s = await bare('thrower', () => {
      throw new Error('handler bug');
    });
    assert.equal(errorCode(await s.ask(raw(0xec, 1))), 'TS_ERR_INTERNAL');
    assert.equal(s.node.stats().errors, 1);
    assert.equal(errorCode(await s.ask(raw(0xec, 1))), 'TS_ERR_INTERNAL');
    await s.close();
  });

  it('cannot be set from the command line: the old --bench-raw is an unknown option', () => {
    for (const cmd of ['server', 'start']) {
      const r = spawnSync(process.execPath, [BIN, cmd, '--bench-raw'], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(r.status, 1, `${cmd}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /Unknown option '--bench-raw'/);
    }
  });
});
