/**
 * The raw messages of the lab's transport benchmark (bench.ts, in the tab) and the echo that
 * answers them in the node (injected as the node's raw handler by bench/browser/echo-node.ts).
 * First byte RAW_MAGIC, 0xEC (never a protocol version: PROTOCOL.md §11), then:
 *
 *   [0xEC, 1, ...]                   acknowledged with 8 zero bytes
 *   [0xEC, 2, 0, 0, size:u32 LE, ...] answered with `size` zero bytes
 *
 * No decoding, no tables: the transport's own cost on the node's own connections. Anything
 * else, and a reply above `maxReply` bytes, is not the echo's: the node decodes it as a frame
 * (and refuses it).
 */

export const RAW_MAGIC = 0xec;
const ACK = 1;
const REPLY = 2;

/** A raw message of `bytes` bytes (at least 2) that the echo acknowledges. */
export function rawPush(bytes: number): Uint8Array {
  const m = new Uint8Array(Math.max(2, bytes));
  m[0] = RAW_MAGIC;
  m[1] = ACK;
  return m;
}

/** A raw message of `reqBytes` bytes (at least 8) that the echo answers with `replyBytes` bytes. */
export function rawPull(reqBytes: number, replyBytes: number): Uint8Array {
  const m = new Uint8Array(Math.max(8, reqBytes));
  m[0] = RAW_MAGIC;
  m[1] = REPLY;
  new DataView(m.buffer).setUint32(4, replyBytes, true);
  return m;
}

/**
 * The echo, in the shape of a node's raw handler (server/node/node.ts, RawHandler). Replies come
 * from one zero-filled buffer, grown to the largest reply asked for and never written.
 */
export function rawEcho(maxReply: number): (msg: Uint8Array, reply: (bytes: Uint8Array) => void) => boolean {
  const ack = new Uint8Array(8);
  let zeros = new Uint8Array(0);
  return (msg, reply) => {
    if (msg.byteLength < 2 || msg[0] !== RAW_MAGIC) return false;
    if (msg[1] === ACK) {
      reply(ack);
      return true;
    }
    if (msg[1] !== REPLY || msg.byteLength < 8) return false;
    const size = new DataView(msg.buffer, msg.byteOffset, 8).getUint32(4, true);
    if (size > maxReply) return false;
    if (zeros.byteLength < size) zeros = new Uint8Array(size);
    reply(zeros.subarray(0, size));
    return true;
  };
}
