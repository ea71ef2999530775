/**
 * TCP dialer for Node workers: `tcp://host:port` → a length-prefixed `Conn`.
 */
import { connect } from 'node:net';
import { streamDialer } from '../../shared/transport/stream.ts';
import type { Dialer } from '../../shared/transport/types.ts';

export function tcpDialer(opts: { maxMessage?: number; timeoutMs?: number } = {}): Dialer {
  return streamDialer(connect, opts);
}
