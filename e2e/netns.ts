/**
 * A two-host lab on one machine: two network namespaces of this process's own (never the
 * machine's interfaces), joined by a veth pair, each end's egress shaped with `tc … tbf` when a
 * rate is given (so both directions of the link are). Needs root and Debian's iproute2. Used by
 * bench/traffic-link.ts: a worker behind a slow link.
 *
 *   const link = createLink({ rate: '10mbit' }); … startCluster({ netns: link.a, … }); … link.close();
 */
import { execFileSync } from 'node:child_process';

export interface Link {
  /** Namespace names: `a` (e.g. the cluster) and `b` (e.g. a worker). */
  a: string;
  b: string;
  /** Addresses of each end. */
  addrA: string;
  addrB: string;
  /** Deletes both namespaces (and with them the veth pair). Idempotent. */
  close(): void;
}

let made = 0;

const ip = (args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });

/** Creates the two namespaces and their link; `rate` (tc syntax, e.g. `10mbit`) shapes both ways. */
export function createLink(opts: { rate?: string } = {}): Link {
  const tag = `ts${process.pid}x${made++}`;
  const a = `${tag}a`;
  const b = `${tag}b`;
  const addrA = '10.77.0.1';
  const addrB = '10.77.0.2';
  const close = () => {
    for (const ns of [a, b])
      try {
        ip(['netns', 'del', ns]);
      } catch {
        // not made, or gone
      }
  };
  try {
    ip(['netns', 'add', a]);
    ip(['netns', 'add', b]);
    // Interface names are per namespace once moved; the pair is created in ours, so make them unique.
    ip(['link', 'add', `${tag}A`, 'type', 'veth', 'peer', 'name', `${tag}B`]);
    ip(['link', 'set', `${tag}A`, 'netns', a]);
    ip(['link', 'set', `${tag}B`, 'netns', b]);
    for (const [ns, dev, addr] of [
      [a, `${tag}A`, addrA],
      [b, `${tag}B`, addrB],
    ]) {
      ip(['-n', ns, 'addr', 'add', `${addr}/24`, 'dev', dev]);
      ip(['-n', ns, 'link', 'set', dev, 'up']);
      ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      if (opts.rate)
        execFileSync(
          'ip',
          [
            'netns',
            'exec',
            ns,
            'tc',
            'qdisc',
            'add',
            'dev',
            dev,
            'root',
            'tbf',
            'rate',
            opts.rate,
            'burst',
            '32kbit',
            'latency',
            '50ms',
          ],
          {
            stdio: ['ignore', 'ignore', 'pipe'],
          },
        );
    }
  } catch (err) {
    close();
    throw new Error(`could not make the network namespaces (root and iproute2 needed): ${String(err)}`);
  }
  return {
    a,
    b,
    addrA,
    addrB,
    close,
  };
}
