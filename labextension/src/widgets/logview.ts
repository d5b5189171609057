/** Live log of the selected server over its log websocket (history, then live). */
import { Widget } from '@lumino/widgets';
import { socketUrl } from '../api';
import { h, setChildren } from '../dom';
import { JSONSocket } from '../socket';
import { XgenStore } from '../store';
import { ILogLine } from '../types';

const MAX_LINES = 2000;

export class LogView extends Widget {
  constructor(
    private readonly store: XgenStore,
    private readonly options: { tail: () => number }
  ) {
    super();
    this.addClass('xgen-section');
    this.addClass('xgen-logs');
    this._title = h('span', { className: 'xgen-log-title', 'data-testid': 'xgen-log-title' }, 'no server selected');
    this._status = h('span', { className: 'xgen-log-status xgen-muted', 'data-testid': 'xgen-log-status' });
    this._lines = h('div', { className: 'xgen-log-view', 'data-testid': 'xgen-log-view', tabindex: 0 });
    setChildren(
      this.node,
      h('h3', { className: 'xgen-heading' }, 'Log ', this._title, ' ', this._status),
      this._lines
    );
    store.selectedChanged.connect((_, name) => this.follow(name), this);
  }

  /** Follow `name`'s log (null: stop). */
  follow(name: string | null): void {
    this._socket?.dispose();
    this._socket = null;
    this._lastSeq = 0;
    this._name = name;
    this._lines.textContent = '';
    this._title.textContent = name ?? 'no server selected';
    this._status.textContent = '';
    if (!name) {
      return;
    }
    this._socket = new JSONSocket({
      url: () => socketUrl(['servers', name, 'logs'], { tail: this.options.tail() }),
      onMessage: msg => {
        if (msg && msg.kind === 'log' && msg.line) {
          this.append(msg.line as ILogLine);
        }
      },
      onStatus: connected => {
        this._status.textContent = connected ? 'live' : 'disconnected';
      },
      // Stop retrying once the server left the list (unloaded).
      shouldReconnect: () => this._name === name && name in this.store.state.servers,
      minDelayMs: 1000,
      maxDelayMs: 5000
    });
  }

  /** Append a line unless already shown (history is resent on reconnect). */
  append(line: ILogLine): void {
    if (line.seq <= this._lastSeq) {
      return;
    }
    this._lastSeq = line.seq;
    const el = this._lines;
    const atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
    el.appendChild(
      h(
        'div',
        { className: 'xgen-log-line', 'data-seq': line.seq, title: new Date(line.time * 1000).toLocaleTimeString() },
        line.text
      )
    );
    while (el.childElementCount > MAX_LINES) {
      el.firstElementChild!.remove();
    }
    if (atBottom) {
      el.scrollTop = el.scrollHeight;
    }
  }

  dispose(): void {
    this._socket?.dispose();
    super.dispose();
  }

  private _socket: JSONSocket | null = null;
  private _name: string | null = null;
  private _lastSeq = 0;
  private readonly _title: HTMLElement;
  private readonly _status: HTMLElement;
  private readonly _lines: HTMLElement;
}
