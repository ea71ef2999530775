/**
 * TCP dialer (Node workers and server-to-server): `tcp://host:port` → a length-prefixed `Conn`.
 */
import { connect } from 'node:net';
import { TabshardError } from '../../shared/errors.ts';
import { StreamConn } from '../../shared/transport/stream.ts';
import { type Conn, DEFAULT_MAX_MESSAGE, type Dialer } from '../../shared/transport/types.ts';

/** Parses `tcp://host:port` (host defaults to 127.0.0.1). */
export function parseTcpAddress(address: string): { host: string; port: number } {
  const m = /^tcp:\/\/([^:/]*):(\d{1,5})$/.exec(address);
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || port < 1 || port > 65535) throw new TabshardError('TS_ERR_INVALID_ARGUMENT', `bad tcp address ${address}`);
  return { host: m[1] || '127.0.0.1', port };
}

export function tcpDialer(opts: { maxMessage?: number; timeoutMs?: number } = {}): Dialer {
  const maxMessage = opts.maxMessage ?? DEFAULT_MAX_MESSAGE;
  return {
    kind: 'tcp',
    dial(address: string): Promise<Conn> {
      const { host, port } = parseTcpAddress(address);
      return new Promise((resolve, reject) => {
        const sock = connect({ host, port, noDelay: true });
        const timer = setTimeout(() => {
          sock.destroy();
          reject(new TabshardError('TS_ERR_CONNECT_FAILED', `${address}: timed out`));
        }, opts.timeoutMs ?? 10_000);
        sock.once('error', (err) => {
          clearTimeout(timer);
          reject(new TabshardError('TS_ERR_CONNECT_FAILED', `${address}: ${err.message}`, { cause: err }));
        });
        sock.once('connect', () => {
          clearTimeout(timer);
          sock.removeAllListeners('error');
          resolve(new StreamConn(sock, 'tcp', address, maxMessage));
        });
      });
    },
  };
}
