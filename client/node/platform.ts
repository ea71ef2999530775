/**
 * The Node worker's platform for the bootstrap (client/bootstrap.ts): the `ws` package's
 * WebSocket, @roamhq/wrtc for WebRTC, the global fetch, shards kept in memory, and tfjs in this
 * process on its fastest backend (client/tf-backend.ts) for the gradients.
 */
import wrtc from '@roamhq/wrtc';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import WebSocket from 'ws';
import { type AppInfo, bindApp, type TaskMath } from '../../apps/workers.ts';
import type { DecodedShard } from '../../shared/apps/shard.ts';
import { type Clock, realClock } from '../../shared/clock-source.ts';
import { MemoryShardStore } from '../bootstrap-shards.ts';
import type { WorkerCompute, WorkerPlatform } from '../bootstrap-types.ts';
import type { GradientResult } from '../runner-types.ts';
import { type BackendProbe, initTf } from '../tf-backend.ts';
import type { WrtcImpl } from '../transports/webrtc.ts';
import type { WebSocketCtor } from '../transports/ws.ts';

/** Gradients with tfjs in this process: the backend the probe finds fastest (`prefer` narrows the candidates). */
export class InProcessCompute implements WorkerCompute {
  private math: TaskMath | null = null;

  constructor(private readonly prefer?: readonly string[]) {}

  async start(app: AppInfo): Promise<{ backend: string; probes: BackendProbe[] }> {
    this.math = bindApp(app);
    const probes: BackendProbe[] = [];
    const backend = await initTf(tf, { prefer: this.prefer, onprobe: (p) => probes.push(p) });
    return { backend, probes };
  }

  gradient(shard: DecodedShard, values: Float32Array[]): Promise<GradientResult> {
    if (!this.math) throw new Error('gradient before start');
    return this.math.gradient(tf, shard, values);
  }

  close(): void {}
}

/** The platform of `tabshard worker`; `clock` and the backends to probe may be given (tests). */
export function nodePlatform(o: { agent?: string; clock?: Clock; backends?: readonly string[] } = {}): WorkerPlatform {
  return {
    fetch: (url) => fetch(url),
    WebSocket: WebSocket as unknown as WebSocketCtor,
    wrtc: wrtc as unknown as WrtcImpl,
    shards: new MemoryShardStore(),
    compute: new InProcessCompute(o.backends),
    clock: o.clock ?? realClock,
    agent: o.agent ?? `node ${process.version}`,
  };
}
