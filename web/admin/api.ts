/**
 * The admin REST API as the console calls it (the same routes as any other client: README,
 * /api/openapi.json). Every call carries the token; a refusal is thrown with its error code.
 */

export class AdminApi {
  constructor(private readonly token: string) {}

  setTau(job: number, tau: number | null) {
    return this.call('PUT', `/api/jobs/${job}/tau`, { tau });
  }
  control(job: number, action: 'pause' | 'resume' | 'stop') {
    return this.call('POST', `/api/jobs/${job}/${action}`);
  }
  evict(job: number, worker: number) {
    return this.call('POST', `/api/jobs/${job}/workers/${worker}/evict`);
  }
  startJob(body: { name?: string; iterations?: number; shards?: number; tau?: number | null }) {
    return this.call('POST', '/api/jobs', body);
  }
  /** Resolves once the node holds nothing, with the ring version then installed. */
  drainNode(node: string) {
    return this.call('POST', `/api/nodes/${encodeURIComponent(node)}/drain`) as Promise<{ node: string; ring: number }>;
  }

  private async call(method: string, path: string, body?: unknown): Promise<unknown> {
    const res = await fetch(path, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(`${json.code ?? `HTTP ${res.status}`}: ${json.message ?? ''}`);
    return json;
  }
}
