/**
 * `tabshard server --join <gateway URL>`: a node that listens already asks the cluster's gateway
 * to take it in (`POST <URL>/api/nodes` with its id and addresses, the admin token as
 * `Authorization: Bearer`). The gateway answers once the node masters its share, which takes as
 * long as the pre-copy of its ranges: the request has no time limit (node:http, not fetch, whose
 * 300 s header timeout would cut a long pre-copy short).
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface JoinReply {
  node: string;
  ring: number;
}

/** Where `POST /api/nodes` is for a gateway URL (`http://host:port`, perhaps with a path). */
export function joinUrl(gateway: string): URL {
  let url: URL;
  try {
    url = new URL(gateway);
  } catch {
    throw new Error('not a URL (expected http://host:port)');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new Error(`not an http(s) URL (expected http://host:port)`);
  if (url.search || url.hash) throw new Error('expected the gateway URL without a query or fragment');
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/api/nodes`;
  return url;
}

/**
 * Posts the join; resolves with the gateway's `{node, ring}`, or rejects with why not: the
 * connection error, or the gateway's coded refusal (`TS_ERR_…: message (HTTP status)`).
 */
export function joinCluster(
  gateway: string,
  node: { id: string; addresses: Record<string, string> },
  token: string | undefined,
): Promise<JoinReply> {
  return new Promise((resolve, reject) => {
    const url = joinUrl(gateway);
    if (!token) throw new Error('TABSHARD_ADMIN_TOKEN is not set (the join needs the cluster admin token)');
    const body = JSON.stringify({ id: node.id, addresses: node.addresses });
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
      },
    });
    req.on('error', (err) => reject(new Error(err.message || String(err))));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (err) => reject(err));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: Record<string, unknown> | null = null;
        try {
          const v = JSON.parse(text);
          if (typeof v === 'object' && v !== null) json = v;
        } catch {
          // not JSON: reported by status below
        }
        const status = res.statusCode ?? 0;
        if (status < 200 || status > 299) {
          const what =
            typeof json?.code === 'string'
              ? `${json.code}: ${json.message ?? ''}`
              : typeof json?.message === 'string'
                ? json.message
                : text.trim().slice(0, 200) || (res.statusMessage ?? '');
          reject(new Error(`${what} (HTTP ${status})`));
          return;
        }
        if (typeof json?.node !== 'string' || !Number.isInteger(json.ring)) {
          reject(new Error(`the gateway answered HTTP ${status} without {node, ring}`));
          return;
        }
        resolve({ node: json.node, ring: json.ring as number });
      });
    });
    req.end(body);
  });
}
