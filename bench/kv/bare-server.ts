/**
 * bench/kv's floor on TCP: a plain `net` server with no framing of ours. Each connection first
 * sends 8 bytes, `request:u32 reply:u32` (little-endian); from then on, every `request` bytes it
 * receives are answered with `reply` bytes from one reused buffer. The bytes are only counted,
 * never parsed: what the machine and Node's sockets cost for the same traffic as a PS request.
 * Prints `{"event":"listening","tcp":"tcp://127.0.0.1:PORT"}` once ready.
 */
import { createServer } from 'node:net';

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
server.listen(0, '127.0.0.1', () => {
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  console.log(JSON.stringify({ event: 'listening', tcp: `tcp://127.0.0.1:${port}` }));
});
process.on('SIGTERM', () => process.exit(0));
