/**
 * A JSON websocket that reconnects with backoff until disposed, so the sidebar
 * survives server restarts and network blips without user action.
 */

export interface ISocketOptions {
  /** Builds the URL on every (re)connect, so query params can change. */
  url: () => string;
  onMessage: (msg: any) => void;
  onStatus?: (connected: boolean, error: string | null) => void;
  /** Return false to stop reconnecting (e.g. the server is gone). */
  shouldReconnect?: () => boolean;
  minDelayMs?: number;
  maxDelayMs?: number;
}

export class JSONSocket {
  constructor(private readonly options: ISocketOptions) {
    this.connect();
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  get connected(): boolean {
    return this._ws?.readyState === WebSocket.OPEN;
  }

  send(msg: unknown): void {
    if (this.connected) {
      this._ws!.send(JSON.stringify(msg));
    }
  }

  /** Drop the current connection and open a fresh one now. */
  reconnect(): void {
    this.close();
    this._attempt = 0;
    this.connect();
  }

  dispose(): void {
    this._disposed = true;
    this.close();
  }

  private close(): void {
    if (this._timer !== null) {
      clearTimeout(this._timer);
      this._timer = null;
    }
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      ws.onclose = null;
      ws.onmessage = null;
      ws.onerror = null;
      ws.onopen = null;
      ws.close();
    }
  }

  private connect(): void {
    if (this._disposed) {
      return;
    }
    const ws = new WebSocket(this.options.url());
    this._ws = ws;
    ws.onopen = () => {
      this._attempt = 0;
      this.options.onStatus?.(true, null);
    };
    ws.onmessage = ev => {
      let msg: unknown;
      try {
        msg = JSON.parse(ev.data as string);
      } catch {
        return;
      }
      this.options.onMessage(msg);
    };
    ws.onclose = ev => {
      if (this._ws !== ws) {
        return;
      }
      this._ws = null;
      const why = ev.reason || `connection closed (code ${ev.code})`;
      this.options.onStatus?.(false, why);
      this.schedule();
    };
  }

  private schedule(): void {
    if (this._disposed || (this.options.shouldReconnect && !this.options.shouldReconnect())) {
      return;
    }
    const min = this.options.minDelayMs ?? 1000;
    const max = this.options.maxDelayMs ?? 15000;
    const delay = Math.min(max, min * 2 ** this._attempt);
    this._attempt += 1;
    this._timer = setTimeout(() => {
      this._timer = null;
      this.connect();
    }, delay);
  }

  private _ws: WebSocket | null = null;
  private _timer: ReturnType<typeof setTimeout> | null = null;
  private _attempt = 0;
  private _disposed = false;
}
