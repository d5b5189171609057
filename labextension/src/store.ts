/**
 * The sidebar's single source of truth: folds events-websocket messages and
 * REST answers through the pure reducer and tells widgets when state changes.
 */
import { ServerConnection } from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';
import { requestAPI, requestProxy, socketUrl } from './api';
import { IState, initialState, isLoading, reduce } from './model';
import { JSONSocket } from './socket';
import {
  IBackendEntry,
  IBoxServer,
  ICatalogEntry,
  ILoadRequest,
  IModelEntry,
  IPlan,
  IPullJob,
  IServer,
  XgenAction,
  XgenEvent
} from './types';

/** How often the "On this box" listing is fetched besides on state events (ms). */
export const BOX_REFRESH_MS = 10 * 1000;

export class XgenStore {
  constructor(
    options: { interval?: number; boxRefreshMs?: number; settings?: ServerConnection.ISettings } = {}
  ) {
    this._interval = options.interval ?? 2;
    this._boxRefreshMs = options.boxRefreshMs ?? BOX_REFRESH_MS;
    this._settings = options.settings;
  }

  get state(): IState {
    return this._state;
  }

  get changed(): ISignal<this, IState> {
    return this._changed;
  }

  /** The server whose log the log view follows (null: none). */
  get selected(): string | null {
    return this._selected;
  }

  set selected(name: string | null) {
    if (name !== this._selected) {
      this._selected = name;
      this._selectedChanged.emit(name);
    }
  }

  get selectedChanged(): ISignal<this, string | null> {
    return this._selectedChanged;
  }

  get interval(): number {
    return this._interval;
  }

  /** GPU sampling rate in seconds; sent to the open socket, used by later connects. */
  set interval(seconds: number) {
    if (seconds === this._interval) {
      return;
    }
    this._interval = seconds;
    this._socket?.send({ interval: seconds });
  }

  dispatch(action: XgenAction): void {
    const next = reduce(this._state, action);
    if (next !== this._state) {
      this._state = next;
      this._changed.emit(next);
    }
    // Anyone's server changing state on this box may change the listing: ours are told here.
    if (action.kind === 'hello' || action.kind === 'state') {
      void this.refreshBox();
    }
  }

  /** Open the events websocket (idempotent). */
  start(): void {
    if (this._socket) {
      return;
    }
    this._socket = new JSONSocket({
      url: () => socketUrl(['events'], { interval: this._interval }),
      onMessage: msg => {
        const event = msg as XgenEvent;
        this.dispatch(event);
        // A server came, settled or went: the catalog's loaded marks moved.
        if (event.kind === 'hello' || (event.kind === 'state' && !isLoading(event.data.state))) {
          void this.refreshCatalog();
        }
      },
      onStatus: (connected, error) => this.dispatch({ kind: 'connection', connected, error })
    });
    // Other users' servers send us no events: poll for them (skipped while disconnected;
    // the hello of the next connection refreshes).
    this._boxTimer = setInterval(() => {
      if (this._state.connected) {
        void this.refreshBox();
      }
    }, this._boxRefreshMs);
  }

  /**
   * Fetch everyone's servers on this box. Calls while one is in flight are folded into
   * one more fetch after it, so a burst of state events costs at most two requests.
   */
  async refreshBox(): Promise<void> {
    if (this._boxInFlight) {
      this._boxAgain = true;
      return this._boxInFlight;
    }
    this._boxInFlight = (async () => {
      do {
        this._boxAgain = false;
        try {
          const answer = await requestAPI<{ servers: IBoxServer[] }>(['servers'], {}, { scope: 'box' }, this._settings);
          this.dispatch({ kind: 'box', servers: answer.servers ?? [] });
        } catch (err) {
          this.dispatch({ kind: 'box-error', error: err instanceof Error ? err.message : String(err) });
        }
      } while (this._boxAgain && !this._disposed);
    })().finally(() => {
      this._boxInFlight = null;
    });
    return this._boxInFlight;
  }

  /**
   * Fetch `xgen/v1/models` (loaded servers and loadable catalog names) into the state. A failure
   * keeps the last catalog: the section is a convenience, the servers list stays right.
   */
  async refreshCatalog(): Promise<void> {
    try {
      const answer = await requestProxy<{ data: ICatalogEntry[] }>(['models'], this._settings);
      this.dispatch({ kind: 'catalog', models: answer.data ?? [] });
    } catch (err) {
      console.warn('xgen: the model catalog could not be fetched', err);
    }
  }

  async refreshServers(): Promise<void> {
    const answer = await requestAPI<{ servers: IServer[] }>(['servers']);
    this.dispatch({ kind: 'servers', servers: answer.servers });
  }

  async models(): Promise<IModelEntry[]> {
    const answer = await requestAPI<{ models: IModelEntry[] }>(['models']);
    return answer.models ?? [];
  }

  async backends(): Promise<{ [id: string]: IBackendEntry }> {
    const answer = await requestAPI<{ backends: { [id: string]: IBackendEntry } }>(['backends']);
    return answer.backends ?? {};
  }

  /** What a load of `request` would do (backend, memory per card, predicted t/s); starts nothing. */
  async plan(request: ILoadRequest): Promise<IPlan> {
    const init = { method: 'POST', body: JSON.stringify(request) };
    return requestAPI<IPlan>(['plan'], init, undefined, this._settings);
  }

  /** Start a server; the answer (202, state planned/starting) goes into the state at once. */
  async load(request: ILoadRequest): Promise<IServer> {
    const init = { method: 'POST', body: JSON.stringify(request) };
    const server = await requestAPI<IServer>(['servers'], init, undefined, this._settings);
    this.dispatch({ kind: 'upsert', data: server });
    return server;
  }

  /** Start (or join) a pull of `spec` (REPO[:QUANT or FILE]); its progress arrives as `pull` events. */
  async pull(spec: string): Promise<IPullJob> {
    const init = { method: 'POST', body: JSON.stringify({ model: spec }) };
    const job = await requestAPI<IPullJob>(['pulls'], init, undefined, this._settings);
    this.dispatch({ kind: 'pull', job });
    return job;
  }

  async unload(name: string): Promise<IServer> {
    const server = await requestAPI<IServer>(['servers', name], { method: 'DELETE' });
    this.dispatch({ kind: 'upsert', data: server });
    return server;
  }

  dispose(): void {
    this._disposed = true;
    if (this._boxTimer !== null) {
      clearInterval(this._boxTimer);
      this._boxTimer = null;
    }
    this._socket?.dispose();
    this._socket = null;
    Signal.clearData(this);
  }

  private _state: IState = initialState;
  private _interval: number;
  private _selected: string | null = null;
  private _socket: JSONSocket | null = null;
  private readonly _boxRefreshMs: number;
  private readonly _settings: ServerConnection.ISettings | undefined;
  private _boxTimer: ReturnType<typeof setInterval> | null = null;
  private _boxInFlight: Promise<void> | null = null;
  private _boxAgain = false;
  private _disposed = false;
  private _changed = new Signal<this, IState>(this);
  private _selectedChanged = new Signal<this, string | null>(this);
}
