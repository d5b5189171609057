/**
 * Shapes of the xgen REST / WebSocket contract (docs/API.md). Only the fields
 * the sidebar reads are typed strictly; the rest pass through untouched.
 */

export type ServerState =
  | 'planned'
  | 'starting'
  | 'loading'
  | 'ready'
  | 'stopping'
  | 'stopped'
  | 'failed'
  | 'crashed';

export interface IReason {
  rule: string;
  effect: string;
  why: string;
  level: 'info' | 'warning';
}

/** The cost model's tokens/s of a placement (LaunchPlan.prediction). */
export interface IPrediction {
  decode_tps: number;
  prompt_tps: number;
  strategy: string;
  flags?: string;
  runner_up?: IPrediction | null;
}

/** MemoryEstimate.to_dict(): bytes per place; per_gpu for a split, in the order of plan.gpus. */
export interface IMemoryEstimate {
  gpu_total: number;
  host_total: number;
  budget?: number | null;
  per_gpu?: number[];
  per_gpu_budget?: number[];
  [key: string]: unknown;
}

/** LaunchPlan.to_dict(), as `POST xgen/api/plan` answers (nothing started). */
export interface IPlan {
  name: string;
  backend: string;
  gpus: number[];
  memory: IMemoryEstimate | null;
  reasons: IReason[];
  prediction?: IPrediction | null;
  [key: string]: unknown;
}

export interface IServerError {
  id: string;
  summary: string;
  engine_fault?: boolean;
  log_tail?: string;
}

export interface IServer {
  name: string;
  model: string;
  model_path?: string;
  server_type?: string;
  state: ServerState;
  revision?: number;
  created_at?: number;
  backend: string;
  reasons?: IReason[];
  plan?: { reasons?: IReason[]; [key: string]: unknown } | null;
  pid?: number | null;
  port?: number | null;
  endpoint?: string | null;
  error?: IServerError | null;
  progress?: number | null;
  progress_message?: string | null;
  /** The proxy's fair queue (`GET xgen/api/servers/{name}`); null until a request went through it. */
  queue?: IQueue | null;
  [key: string]: unknown;
}

/** FairQueue.snapshot() (core/scheduler/fairqueue.py): positions per user, 1 = next. */
export interface IQueue {
  slots: number;
  in_flight: number;
  queued: number;
  limit?: number;
  positions: { [user: string]: number[] };
}

/** One entry of `GET xgen/v1/models`: a ready server (loaded) or a catalog name a load can start. */
export interface ICatalogEntry {
  id: string;
  loaded: boolean;
  catalog?: 'default' | 'gguf' | 'hf' | 'preset' | string;
  size?: number | null;
  [key: string]: unknown;
}

export interface IGPU {
  index: number;
  name: string;
  vendor?: string;
  memory_total: number | null;
  memory_free?: number | null;
  memory_used?: number | null;
  utilization?: number | null;
  arch?: string | null;
  integrated?: boolean;
  /** The Ray node's address on a cluster; absent or null on one box. */
  node?: string | null;
  [key: string]: unknown;
}

export interface ICPU {
  cores_physical?: number | null;
  cores_logical?: number | null;
  memory_total?: number | null;
  memory_available?: number | null;
  model_name?: string | null;
}

export interface IHardwareReport {
  method?: string;
  gpus: IGPU[];
  cpu?: ICPU | null;
  [key: string]: unknown;
}

/** One device a box server reserved memory on (core/box/registry.py listing()). */
export interface IBoxDevice {
  device: string;
  label: string;
  kind: 'gpu' | 'host' | string;
  bytes: number;
}

/**
 * One entry of `GET xgen/api/servers?scope=box`: anyone's server on this box.
 * The API never sends keys, logs, ports or paths here, and the sidebar reads only these fields.
 */
export interface IBoxServer {
  owner: string;
  name: string;
  model: string;
  backend?: string;
  state: ServerState;
  devices: (IBoxDevice | string)[];
  gpu_bytes: number | null;
  host_bytes: number | null;
  shared_with?: string[];
  mine: boolean;
  created_at?: number;
  [key: string]: unknown;
}

export interface ILogLine {
  seq: number;
  time: number;
  text: string;
  attempt?: number;
}

export interface IModelEntry {
  name: string;
  path?: string;
  format?: string;
  size?: number | null;
}

export interface IBackendEntry {
  backend?: string;
  available: boolean;
  executable?: string | null;
  source?: string | null;
  reason?: string | null;
}

export interface ILoadRequest {
  model: string;
  name?: string;
  backend?: string;
  n_ctx?: number;
  [key: string]: unknown;
}

export interface IProgress {
  progress: number | null;
  message: string;
}

/** A pull's progress (`xgen/api/pulls`): bytes on disk of `total`, `rate` in bytes/s. */
export interface IPullProgress {
  repo: string;
  file: string;
  done: number;
  total: number;
  fraction: number;
  rate: number;
  state: 'starting' | 'downloading' | 'waiting' | 'verifying' | 'done';
}

/** A model pull the server runs in the background (docs/API.md, PullJob). */
export interface IPullJob {
  id: string;
  spec: string;
  state: 'running' | 'done' | 'failed';
  progress: IPullProgress | null;
  result: { name: string; path: string; format: string; size: number; repo: string; quant?: string | null } | null;
  error: { error: string; message: string; hint?: string | null } | null;
}

/** Messages of the `xgen/api/events` websocket. */
export type XgenEvent =
  | {
      kind: 'hello';
      servers: IServer[];
      hardware: IHardwareReport | null;
      /** Where models run: "box service at <socket>, user <name>" or "in this Jupyter server". */
      xgen_core?: string;
    }
  | { kind: 'state'; server: string; data: IServer }
  | { kind: 'progress'; server: string; data: IProgress }
  | { kind: 'queue'; server: string; data: IQueue }
  | { kind: 'gpus'; data: { gpus: IGPU[]; time: number } }
  | { kind: 'pull'; job: IPullJob };

/** Local actions the sidebar feeds through the same reducer. */
export type XgenAction =
  | XgenEvent
  | { kind: 'servers'; servers: IServer[] }
  | { kind: 'upsert'; data: IServer }
  | { kind: 'box'; servers: IBoxServer[] }
  | { kind: 'box-error'; error: string }
  | { kind: 'catalog'; models: ICatalogEntry[] }
  | { kind: 'connection'; connected: boolean; error?: string | null };
