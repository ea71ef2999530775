/**
 * bench/kv's floor process. On TCP: a plain `net` server with no framing of ours. Each connection first
 * sends 8 bytes, `request:u32 reply:u32` (little-endian); from then on, every `request` bytes it
 * receives are answered with `reply` bytes from one reused buffer. The bytes are only counted,
 * never parsed: what the machine and Node's sockets cost for the same traffic as a PS request.
 * On WebRTC: a plain data channel with the same counting (bare-webrtc.ts). Prints
 * `{"event":"listening","tcp":"tcp://127.0.0.1:PORT","webrtc":"webrtc+tcp://127.0.0.1:PORT2"}`
 * once both are ready.
 */
import { createServer } from 'node:net';
import { listenBareWebRtc } from './bare-webrtc.ts';

const server = createServer({ noDelay: true }, (sock) => {
  let config = Buffer.alloc(0);
  let request = -1;
  let reply: Buffer = Buffer.alloc(0);
  let got = 0;
  sock.on('data', (chunk: Buffer) => {
    let off = 0;
    if (request < 0) {
      config = Buffer.concat([config, chunk]);
      if (config.byteLength < 8) return;
      request = config.readUInt32LE(0);
      reply = Buffer.alloc(config.readUInt32LE(4));
      off = chunk.byteLength - (config.byteLength - 8);
    }
    got += chunk.byteLength - off;
    while (got >= request) {
      got -= request;
      sock.write(reply);
    }
  });
  sock.on('error', () => sock.destroy());
});
const tcp = new Promise<string>((resolve) =>
  server.listen(0, '127.0.0.1', () => {
    const addr = server.address();
    resolve(`tcp://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`);
  }),
);
const webrtc = new Promise<string>((resolve) => listenBareWebRtc(resolve));
console.log(JSON.stringify({ event: 'listening', tcp: await tcp, webrtc: await webrtc }));
process.on('SIGTERM', () => process.exit(0));
