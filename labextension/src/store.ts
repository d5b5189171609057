/**
 * The sidebar's single source of truth: folds events-websocket messages and
 * REST answers through the pure reducer and tells widgets when state changes.
 */
import { ISignal, Signal } from '@lumino/signaling';
import { requestAPI, socketUrl } from './api';
import { IState, initialState, reduce } from './model';
import { JSONSocket } from './socket';
import {
  IBackendEntry,
  ILoadRequest,
  IModelEntry,
  IServer,
  XgenAction,
  XgenEvent
} from './types';

export class XgenStore {
  constructor(options: { interval?: number } = {}) {
    this._interval = options.interval ?? 2;
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
  }

  /** Open the events websocket (idempotent). */
  start(): void {
    if (this._socket) {
      return;
    }
    this._socket = new JSONSocket({
      url: () => socketUrl(['events'], { interval: this._interval }),
      onMessage: msg => this.dispatch(msg as XgenEvent),
      onStatus: (connected, error) => this.dispatch({ kind: 'connection', connected, error })
    });
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

  /** Start a server; the answer (202, state planned/starting) goes into the state at once. */
  async load(request: ILoadRequest): Promise<IServer> {
    const server = await requestAPI<IServer>(['servers'], {
      method: 'POST',
      body: JSON.stringify(request)
    });
    this.dispatch({ kind: 'upsert', data: server });
    return server;
  }

  async unload(name: string): Promise<IServer> {
    const server = await requestAPI<IServer>(['servers', name], { method: 'DELETE' });
    this.dispatch({ kind: 'upsert', data: server });
    return server;
  }

  dispose(): void {
    this._socket?.dispose();
    this._socket = null;
    Signal.clearData(this);
  }

  private _state: IState = initialState;
  private _interval: number;
  private _selected: string | null = null;
  private _socket: JSONSocket | null = null;
  private _changed = new Signal<this, IState>(this);
  private _selectedChanged = new Signal<this, string | null>(this);
}
