/**
 * bench:traffic — bytes per iteration at the same loss (docs/architecture.md §7): one job trained
 * by N workers (real `tabshard worker` processes over WebRTC on a fresh embedded cluster per run)
 * with each traffic technique alone and all together:
 *
 *   none       key lists in full (`--no-key-cache`), float32 both ways, nothing deflated
 *   cache      key-list caching (PROTOCOL.md §5.2; the default)
 *   f16-pull   pull replies as F16 (`--pull-values f16`)
 *   q8-push    pushes as Q8 with error feedback (`--push-values q8`)
 *   f16-push   pushes as F16 with error feedback (`--push-values f16`)
 *   deflate    values deflated where it pays (`--compress`)
 *   all        cache + f16-pull + q8-push + deflate
 *   all-f16    cache + f16-pull + f16-push + deflate
 *   cache-deflate   cache + deflate (what `significant` adds its filter to)
 *   significant     cache + deflate + the significantly-modified filter (`--push-threshold`, --threshold)
 *   all-sig    all + the significantly-modified filter
 *   all-rms    all + the filter relative to each push's RMS (`--push-threshold-rms`, --rms)
 *
 * Bytes are the workers' own wire counts (client/worker.ts `bytes`: pushed, requested, pulled,
 * published, frame headers included): what workers send is what the servers receive from them and
 * the other way round (the servers' replication traffic to each other is not in it). Per run: bytes
 * per iteration sent and received by all workers, final held-out log-loss, time from the first
 * lease to the target. JSON lines on stdout: `traffic` per run, `traffic-summary` with medians
 * per technique and the ratios of `none` to each.
 *
 *   npm run bench:traffic [-- --data spam|ctr --examples N --workers 4 --shards 8 --iterations 12
 *       --techniques none,cache,f16-pull,q8-push,f16-push,deflate,all --target 0.12 --repeats 1
 *       --threshold 0.5 --rms 0.5]
 */
import { parseArgs } from 'node:util';
import { firstReached, median, parseMode, runMode, type StudyOptions } from './consistency/run.ts';

const TECHNIQUES: Record<string, { start: string[]; worker: string[] }> = {
  none: { start: [], worker: ['--no-key-cache'] },
  cache: { start: [], worker: [] },
  'f16-pull': { start: ['--pull-values', 'f16'], worker: ['--no-key-cache'] },
  'q8-push': { start: ['--push-values', 'q8'], worker: ['--no-key-cache'] },
  'f16-push': { start: ['--push-values', 'f16'], worker: ['--no-key-cache'] },
  deflate: { start: ['--compress'], worker: ['--no-key-cache'] },
  all: { start: ['--pull-values', 'f16', '--push-values', 'q8', '--compress'], worker: [] },
  'all-f16': { start: ['--pull-values', 'f16', '--push-values', 'f16', '--compress'], worker: [] },
  'cache-deflate': { start: ['--compress'], worker: [] },
  significant: { start: ['--compress', '--push-threshold', 'T'], worker: [] },
  'all-sig': {
    start: ['--pull-values', 'f16', '--push-values', 'q8', '--compress', '--push-threshold', 'T'],
    worker: [],
  },
  'all-rms': {
    start: ['--pull-values', 'f16', '--push-values', 'q8', '--compress', '--push-threshold-rms', 'R'],
    worker: [],
  },
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      data: { type: 'string', default: 'spam' },
      examples: { type: 'string' },
      workers: { type: 'string', default: '4' },
      shards: { type: 'string', default: '8' },
      iterations: { type: 'string', default: '12' },
      nodes: { type: 'string', default: '2' },
      tau: { type: 'string', default: 'bsp' },
      techniques: { type: 'string', default: Object.keys(TECHNIQUES).join(',') },
      target: { type: 'string' },
      repeats: { type: 'string', default: '1' },
      threshold: { type: 'string', default: '0.5' },
      rms: { type: 'string', default: '0.5' },
    },
  });
  const techniques = values.techniques.split(',');
  for (const t of techniques) if (!TECHNIQUES[t]) throw new TypeError(`unknown technique ${t}`);
  const data = ['--data', values.data, '--app', 'logreg', ...(values.examples ? ['--examples', values.examples] : [])];
  const target = Number(values.target ?? (values.data === 'ctr' ? 0.45 : 0.12));
  const base: StudyOptions = {
    workers: Number(values.workers),
    straggler: 1,
    shards: Number(values.shards),
    iterations: Number(values.iterations),
    nodes: Number(values.nodes),
    transport: 'auto',
    target,
    data,
    leaseMs: 20_000,
    tabs: 0,
    repeats: Number(values.repeats),
  };
  const mode = parseMode(values.tau);
  const runs = new Map<string, Array<{ sent: number; received: number; final: number; ms: number }>>(
    techniques.map((t) => [t, []]),
  );
  // Repeats go round the techniques, so a noisy stretch of the shared machine spreads over all of them.
  for (let repeat = 0; repeat < base.repeats; repeat++)
    for (const t of techniques) {
      const start = TECHNIQUES[t].start.map((a) => (a === 'T' ? values.threshold : a === 'R' ? values.rms : a));
      const o = { ...base, startArgs: start, workerArgs: TECHNIQUES[t].worker };
      const r = await runMode(mode, o);
      const reached = firstReached(r.metrics, target);
      const last = r.metrics.at(-1);
      const parts = { pushed: 0, requested: 0, pulled: 0, published: 0 };
      for (const w of r.results) {
        if (!w.bytes) throw new Error('a worker reported no bytes');
        for (const k of Object.keys(parts) as Array<keyof typeof parts>) parts[k] += w.bytes[k];
      }
      const sent = parts.pushed + parts.requested;
      const received = parts.pulled + parts.published;
      const perIteration = (b: number) => Math.round(b / base.iterations);
      const row = {
        sent: perIteration(sent),
        received: perIteration(received),
        final: last?.logLoss ?? Number.NaN,
        ms: reached?.ms ?? Number.POSITIVE_INFINITY,
      };
      runs.get(t)!.push(row);
      console.log(
        JSON.stringify({
          bench: 'traffic',
          technique: t,
          repeat,
          data: values.data,
          examples: values.examples ?? null,
          workers: base.workers,
          shards: base.shards,
          iterations: base.iterations,
          mode: mode.name,
          workerSentPerIteration: row.sent,
          workerReceivedPerIteration: row.received,
          perIteration: Object.fromEntries(Object.entries(parts).map(([k, b]) => [k, perIteration(b)])),
          finalLogLoss: row.final,
          timeToTargetMs: reached?.ms ?? null,
          target,
        }),
      );
    }
  const medians = Object.fromEntries(
    techniques.map((t) => {
      const rs = runs.get(t)!;
      return [
        t,
        {
          sent: median(rs.map((r) => r.sent)),
          received: median(rs.map((r) => r.received)),
          finalLogLoss: median(rs.map((r) => r.final)),
          timeToTargetMs: median(rs.map((r) => r.ms)),
        },
      ];
    }),
  );
  const none = medians.none;
  const ratios = none
    ? Object.fromEntries(
        techniques.map((t) => {
          const m = medians[t];
          return [
            t,
            {
              // The servers receive what the workers send, and send what the workers receive.
              workerTraffic: +((none.sent + none.received) / (m.sent + m.received)).toFixed(2),
              workerSent: +(none.sent / m.sent).toFixed(2),
              serverSent: +(none.received / m.received).toFixed(2),
              logLossChange: +((m.finalLogLoss - none.finalLogLoss) / none.finalLogLoss).toFixed(4),
              timeToTarget: +(m.timeToTargetMs / none.timeToTargetMs).toFixed(2),
            },
          ];
        }),
      )
    : null;
  console.log(JSON.stringify({ bench: 'traffic-summary', data: values.data, medians, vsNone: ratios }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
