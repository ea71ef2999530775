/**
 * Membership of the server group (fastify plugin), admin token on every route:
 *
 * - `GET /api/nodes`: each node's state (up, suspect, dead, joining, draining) and key-range counts;
 * - `POST /api/nodes` `{id, addresses: {tcp, webrtc?}}`: a new node joins (`tabshard server --join`
 *   sends it); answers once the node masters its share: the pre-copy is done and the ring switched;
 * - `POST /api/nodes/:id/drain`: a node hands everything it holds to the others; answers once it
 *   holds nothing.
 *
 * Join and drain are the server manager's (`join`, `drain`); the routes validate what they pass on
 * and answer with the ring version installed afterwards. The manager's refusals keep their codes
 * (a duplicate or unknown id, the last live node: 400 TS_ERR_INVALID_ARGUMENT; a node that
 * cannot be reached: 503 TS_ERR_CONNECT_FAILED).
 */
import type { FastifyInstance } from 'fastify';
import type { ClusterInfo } from '../../shared/cluster.ts';
import { TabshardError } from '../../shared/errors.ts';
import type { NodeView } from '../../shared/status.ts';
import {
  errorSchema,
  inputErrors,
  joinBodySchema,
  membershipReplySchema,
  nodeParams,
  nodeViewSchema,
  TCP_ADDRESS,
  WEBRTC_ADDRESS,
} from './schemas.ts';

/** A node that joins, as the server manager takes it: `control` is the address it dials. */
export interface JoinEntry {
  id: string;
  addresses: Record<string, string>;
  control: string;
}

/** What the server manager offers for live membership changes (ServerManager.join, .drain). */
export interface Membership {
  /** Resolves once the node masters its share (pre-copy done, ring switched). */
  join(entry: JoinEntry): Promise<void>;
  /** Resolves once the node holds nothing (its ranges copied away, ring switched). */
  drain(id: string): Promise<void>;
}

export interface NodesPluginOptions {
  cluster(): ClusterInfo;
  /** Each node's state and key-range counts (none: no `GET /api/nodes`). */
  nodes?: () => NodeView[];
  /** Join and drain (none: no `POST` routes). */
  membership?: Membership;
}

/** What `POST /api/nodes` takes. */
export interface JoinRequest {
  id: string;
  addresses: Record<string, string>;
}

const ADDRESS_FORMS: Record<string, { re: RegExp; form: string }> = {
  tcp: { re: TCP_ADDRESS, form: 'tcp://host:port' },
  webrtc: { re: WEBRTC_ADDRESS, form: 'webrtc+tcp://host:port' },
};

/**
 * Checks a join request (the route's schema has checked its shape already; this is also what
 * refuses an unknown transport and a port outside 1–65535) and builds the manager's entry.
 */
export function joinEntry(req: JoinRequest): JoinEntry {
  const bad = (why: string) => new TabshardError('TS_ERR_INVALID_ARGUMENT', why);
  if (typeof req?.id !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(req.id))
    throw bad('id must be 1–64 characters of A-Z, a-z, 0-9, _ and -');
  if (typeof req.addresses !== 'object' || req.addresses === null) throw bad('addresses must be an object');
  const addresses: Record<string, string> = {};
  for (const [kind, address] of Object.entries(req.addresses)) {
    const f = Object.hasOwn(ADDRESS_FORMS, kind) ? ADDRESS_FORMS[kind] : undefined;
    if (!f)
      throw bad(
        `addresses.${kind}: unknown transport (a node is reached over ${Object.keys(ADDRESS_FORMS).join(', ')})`,
      );
    const m = typeof address === 'string' ? f.re.exec(address) : null;
    const port = m ? Number(m[m.length - 1]) : 0;
    if (!m || port < 1 || port > 65535) throw bad(`addresses.${kind} must be ${f.form} (port 1–65535)`);
    addresses[kind] = address;
  }
  if (!addresses.tcp) throw bad('addresses.tcp is required (the manager dials it)');
  return { id: req.id, addresses, control: addresses.tcp };
}

const tags = ['nodes'];

export async function nodesPlugin(app: FastifyInstance, opts: NodesPluginOptions): Promise<void> {
  const ring = () => opts.cluster().ring.version;

  if (opts.nodes) {
    const nodes = opts.nodes;
    app.get(
      '/api/nodes',
      {
        // Admin only, like the console stream that shows the same states.
        config: { admin: true },
        schema: {
          summary: "The server nodes, each one's state and the key ranges it masters and replicates",
          tags,
          response: {
            200: {
              type: 'object',
              properties: {
                ring: membershipReplySchema.properties.ring,
                nodes: { type: 'array', items: nodeViewSchema },
              },
            },
            401: errorSchema,
            403: errorSchema,
          },
        },
      },
      async () => ({ ring: ring(), nodes: nodes() }),
    );
  }

  if (!opts.membership) return;
  const membership = opts.membership;

  app.post<{ Body: JoinRequest }>(
    '/api/nodes',
    {
      schema: {
        summary: 'A new server node joins: answers once it masters its share (pre-copy done, ring switched)',
        tags,
        body: joinBodySchema,
        response: { 200: membershipReplySchema, ...inputErrors, 503: errorSchema },
      },
    },
    async (req) => {
      const entry = joinEntry(req.body);
      await membership.join(entry);
      return { node: entry.id, ring: ring() };
    },
  );

  app.post<{ Params: { id: string } }>(
    '/api/nodes/:id/drain',
    {
      schema: {
        summary: 'Drain a server node: answers once it holds nothing (its ranges copied away, ring switched)',
        tags,
        params: nodeParams,
        response: { 200: membershipReplySchema, ...inputErrors },
      },
    },
    async (req) => {
      await membership.drain(req.params.id);
      return { node: req.params.id, ring: ring() };
    },
  );
}
