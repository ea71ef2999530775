/**
 * bench:turn — the demo job trained through a TURN server against direct WebRTC (issue target:
 * within 1.5×). A real coturn (use-auth-secret) on 127.0.0.1; per repeat, for each route, a fresh
 * embedded cluster started with `--ice-servers turn:… --turn-secret …` and one headless worker
 * (`tabshard worker`, with `--relay-only` for the TURN route). Reports the worker's wall time from
 * its first lease to the job's end, its per-task medians and the routes it reported; JSON lines
 * on stdout (`turn` per run, `turn-summary` with medians and the TURN / direct ratio).
 *
 *   npm run bench:turn [-- --repeats 3 --shards 16 --iterations 12]
 */
import { parseArgs } from 'node:util';
import { startCoturn } from '../e2e/coturn.ts';
import { runWorkerCli, startCluster, stopCluster } from '../e2e/harness.ts';
import { median } from './consistency/run.ts';

const SECRET = 'bench-turn-secret';

interface Finished {
  wallMs: number;
  tasks: number;
  medians: Record<string, number>;
}

/** One worker's run to the job's end; resolves with its `worker` and `finished` lines. */
async function runWorker(gateway: string, args: string[]) {
  const w = runWorkerCli(gateway, args);
  const code = await w.exit;
  const hello = w.line('worker');
  const finished = w.line('finished');
  if (code !== 0 || !hello || !finished) throw new Error(`worker exited with ${code}`);
  return { routes: hello.routes as Record<string, string>, finished: finished as unknown as Finished };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      repeats: { type: 'string', default: '3' },
      shards: { type: 'string', default: '16' },
      iterations: { type: 'string', default: '12' },
    },
  });
  const turn = await startCoturn(SECRET);
  const walls: Record<'direct' | 'turn', number[]> = { direct: [], turn: [] };
  try {
    for (let repeat = 0; repeat < Number(values.repeats); repeat++)
      for (const route of ['direct', 'turn'] as const) {
        const startArgs = ['--shards', values.shards, '--iterations', values.iterations];
        startArgs.push('--ice-servers', turn.url, '--turn-secret', SECRET);
        const { child, ready } = await startCluster({ startArgs });
        try {
          const r = await runWorker(ready.gateway, route === 'turn' ? ['--relay-only'] : []);
          walls[route].push(r.finished.wallMs);
          console.log(
            JSON.stringify({
              bench: 'turn',
              route,
              repeat,
              routes: r.routes,
              wallMs: r.finished.wallMs,
              tasks: r.finished.tasks,
              medians: r.finished.medians,
            }),
          );
        } finally {
          await stopCluster(child);
        }
      }
  } finally {
    await turn.stop();
  }
  const direct = median(walls.direct);
  const relayed = median(walls.turn);
  console.log(
    JSON.stringify({
      bench: 'turn-summary',
      repeats: Number(values.repeats),
      medianWallMs: { direct, turn: relayed },
      turnOverDirect: +(relayed / direct).toFixed(2),
      goal: 1.5,
    }),
  );
}

await main();
