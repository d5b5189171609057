/**
 * The sidebar's state and a pure reducer over events-websocket messages and
 * local actions, so the state logic is testable without a browser.
 */
import {
  IBoxServer,
  ICatalogEntry,
  IGPU,
  IHardwareReport,
  IProgress,
  IPullJob,
  IQueue,
  IServer,
  ServerState,
  XgenAction
} from './types';

export interface IState {
  servers: { [name: string]: IServer };
  gpus: IGPU[];
  hardware: IHardwareReport | null;
  /** Where this Jupyter server's models run (the hello's `xgen_core`); null until known. */
  core: string | null;
  progress: { [name: string]: IProgress };
  gpusTime: number | null;
  connected: boolean;
  error: string | null;
  /** Everyone's servers on this box (`servers?scope=box`); null until the first answer. */
  box: IBoxServer[] | null;
  boxError: string | null;
  /** Model pulls by job id, as the last event or answer had them. */
  pulls: { [id: string]: IPullJob };
  /** The proxy's fair queue per server, from `queue` events. */
  queues: { [name: string]: IQueue };
  /** `GET xgen/v1/models`: loaded servers and loadable catalog names; null until the first answer. */
  catalog: ICatalogEntry[] | null;
  /** Who we are to the queues, when the hello says (box service: "…, user <name>"); else null. */
  user: string | null;
}

export const initialState: IState = Object.freeze({
  servers: {},
  gpus: [],
  hardware: null,
  core: null,
  progress: {},
  gpusTime: null,
  connected: false,
  error: null,
  box: null,
  boxError: null,
  pulls: {},
  queues: {},
  catalog: null,
  user: null
}) as IState;

/** States in which an engine is (or is about to be) running. */
export const ACTIVE_STATES: ReadonlyArray<ServerState> = [
  'planned',
  'starting',
  'loading',
  'ready',
  'stopping'
];
/** States in which the model is still coming up: the form shows progress. */
export const LOADING_STATES: ReadonlyArray<ServerState> = [
  'planned',
  'starting',
  'loading'
];

export function isActive(state: ServerState): boolean {
  return ACTIVE_STATES.includes(state);
}

export function isLoading(state: ServerState): boolean {
  return LOADING_STATES.includes(state);
}

/** A stopped server is gone: it leaves the list (failed/crashed ones stay to show why). */
/** An older snapshot of the server shown (a load's reply landing after the "ready" event). */
function isStale(server: IServer, shown: IServer | undefined): boolean {
  if (!shown || server.revision === undefined || shown.revision === undefined) {
    return false;
  }
  const a = server.created_at ?? 0;
  const b = shown.created_at ?? 0;
  return a < b || (a === b && server.revision < shown.revision);
}

function withServer(state: IState, server: IServer): IState {
  if (isStale(server, state.servers[server.name])) {
    return state;
  }
  const servers = { ...state.servers };
  const progress = { ...state.progress };
  if (server.state === 'stopped') {
    delete servers[server.name];
  } else {
    servers[server.name] = server;
  }
  if (!isLoading(server.state)) {
    delete progress[server.name];
  }
  return { ...state, servers, progress };
}

function serverMap(list: IServer[]): { [name: string]: IServer } {
  const out: { [name: string]: IServer } = {};
  for (const s of list) {
    if (s.state !== 'stopped') {
      out[s.name] = s;
    }
  }
  return out;
}

export function reduce(state: IState, action: XgenAction): IState {
  switch (action.kind) {
    case 'hello': {
      const hardware = action.hardware ?? state.hardware;
      return {
        ...state,
        servers: serverMap(action.servers ?? []),
        hardware,
        core: action.xgen_core ?? state.core,
        user: userOf(action.xgen_core) ?? state.user,
        gpus: hardware?.gpus ?? state.gpus,
        progress: {},
        connected: true,
        error: null
      };
    }
    case 'servers':
      return { ...state, servers: serverMap(action.servers) };
    case 'state':
      return withServer(state, { ...action.data, name: action.server });
    case 'upsert':
      return withServer(state, action.data);
    case 'progress': {
      const current = state.servers[action.server];
      // A late progress message must not resurrect a server that already settled.
      if (current && !isLoading(current.state)) {
        return state;
      }
      return {
        ...state,
        progress: { ...state.progress, [action.server]: action.data }
      };
    }
    case 'queue':
      return { ...state, queues: { ...state.queues, [action.server]: action.data } };
    case 'catalog':
      return { ...state, catalog: action.models ?? [] };
    case 'gpus':
      return { ...state, gpus: action.data.gpus ?? [], gpusTime: action.data.time ?? null };
    case 'box':
      return { ...state, box: action.servers ?? [], boxError: null };
    case 'box-error':
      // Keep the last listing: a failed refresh says so without blanking the section.
      return { ...state, boxError: action.error };
    case 'pull':
      return { ...state, pulls: { ...state.pulls, [action.job.id]: action.job } };
    case 'connection':
      return {
        ...state,
        connected: action.connected,
        error: action.error === undefined ? state.error : action.error
      };
    default:
      return state;
  }
}

/** Servers in a stable order: by name. */
export function serverList(state: IState): IServer[] {
  return Object.keys(state.servers)
    .sort()
    .map(k => state.servers[k]);
}

/** The server's plan reasons: the top-level list, else the plan's. */
export function reasonsOf(server: IServer) {
  return server.reasons ?? server.plan?.reasons ?? [];
}

/** Progress for a loading server: the latest event, else what the server row carries. */
export function progressOf(state: IState, name: string): IProgress | null {
  const p = state.progress[name];
  if (p) {
    return p;
  }
  const s = state.servers[name];
  if (s && isLoading(s.state)) {
    return { progress: s.progress ?? null, message: s.progress_message ?? s.state };
  }
  return null;
}

/** A GPU's identity: indexes repeat across the nodes of a cluster, so (node, index). */
export function gpuKey(gpu: IGPU): string {
  return `${gpu.node ?? ''}#${gpu.index}`;
}

/**
 * GPUs grouped by node, in the order nodes first appear. On one box (no GPU has a
 * node) this is a single group with node null, so the table stays as it was.
 */
export function gpuGroups(gpus: IGPU[]): { node: string | null; gpus: IGPU[] }[] {
  if (!gpus.some(g => g.node !== null && g.node !== undefined)) {
    return gpus.length ? [{ node: null, gpus }] : [];
  }
  const groups = new Map<string, IGPU[]>();
  for (const g of gpus) {
    const node = g.node ?? '';
    groups.set(node, [...(groups.get(node) ?? []), g]);
  }
  return [...groups].map(([node, list]) => ({ node: node || null, gpus: list }));
}

/** The user name in the hello's `xgen_core` ("box service at <socket>, user <name>"), else null. */
export function userOf(core: string | null | undefined): string | null {
  const m = /, user (\S+)$/.exec(core ?? '');
  return m && m[1] !== 'None' && m[1] !== 'undefined' ? m[1] : null;
}

/** A server's fair queue: the latest `queue` event, else what its REST answer carried. */
export function queueOf(state: IState, name: string): IQueue | null {
  return state.queues[name] ?? state.servers[name]?.queue ?? null;
}

/** Catalog names not loaded and not the name of a listed server, by name. */
export function unloadedModels(state: IState): ICatalogEntry[] {
  return (state.catalog ?? []).filter(m => !m.loaded && !state.servers[m.id]).sort((a, b) => a.id.localeCompare(b.id));
}
