/**
 * The console's live stream: `GET /api/console/stream` read with fetch() (so the admin token
 * travels as `Authorization: Bearer`, which EventSource cannot send), parsed as server-sent
 * events. Reconnects with backoff when the connection drops; a 401/403 ends it (the token is
 * wrong) and is reported to the caller.
 */

export type StreamMessage = { type: string } & Record<string, unknown>;

export interface StreamHandlers {
  message(m: StreamMessage): void;
  /** 'live', 'reconnecting', or a refusal ('refused' with the HTTP status and error code). */
  state(s: 'live' | 'reconnecting' | 'refused', detail?: string): void;
}

export class ConsoleStream {
  private ctl: AbortController | null = null;
  private closed = false;

  constructor(
    private readonly url: string,
    private readonly token: string,
    private readonly on: StreamHandlers,
  ) {}

  start(): void {
    void this.loop();
  }

  close(): void {
    this.closed = true;
    this.ctl?.abort();
  }

  private async loop(): Promise<void> {
    let backoff = 250;
    while (!this.closed) {
      this.ctl = new AbortController();
      try {
        const res = await fetch(this.url, {
          headers: { authorization: `Bearer ${this.token}`, accept: 'text/event-stream' },
          signal: this.ctl.signal,
          cache: 'no-store',
        });
        if (res.status === 401 || res.status === 403) {
          const body = await res.json().catch(() => ({}));
          this.on.state('refused', `${res.status} ${body.code ?? ''}`.trim());
          return;
        }
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        this.on.state('live');
        backoff = 250;
        await this.read(res.body);
      } catch {
        if (this.closed) return;
      }
      if (this.closed) return;
      this.on.state('reconnecting');
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, 5000);
    }
  }

  private async read(body: ReadableStream<Uint8Array>): Promise<void> {
    const reader = body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += dec.decode(value, { stream: true });
      for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        let data = '';
        for (const line of block.split('\n')) if (line.startsWith('data: ')) data += line.slice(6);
        if (data) this.on.message(JSON.parse(data) as StreamMessage);
      }
    }
  }
}
