/**
 * "Usage": the box's usage books (`GET xgen/api/usage`), yours or the whole box's: requests and
 * tokens per model (counted at each user's proxy from the engine's own numbers) and memory held
 * over time (planned bytes while ready, metered by whoever holds the reservations).
 */
import { ServerConnection } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';
import { requestAPI } from '../api';
import { h, setChildren } from '../dom';

export type UsageScope = 'mine' | 'box';

export interface IUsageRow {
  user: string;
  model: string;
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  gpu_byte_seconds: number;
  host_byte_seconds: number;
}

export interface IUsageAnswer {
  scope: UsageScope;
  user: string;
  rows: IUsageRow[];
  totals: Omit<IUsageRow, 'user' | 'model'>;
}

const GIB = 1024 ** 3;

/** Byte-seconds as GiB·h past an hour's worth, else GiB·s: `12.5 GiB·s`, `3.20 GiB·h`. */
export function formatByteSeconds(bs: number): string {
  const gibS = (bs || 0) / GIB;
  return gibS >= 3600 ? `${(gibS / 3600).toFixed(2)} GiB·h` : `${gibS.toFixed(1)} GiB·s`;
}

/** `1.2k` for counts past a thousand, `3.4M` past a million. */
export function formatCount(n: number): string {
  if (n >= 1e6) {
    return `${(n / 1e6).toFixed(1)}M`;
  }
  return n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : String(n);
}

export class UsagePanel extends Widget {
  constructor(private readonly options: { settings?: ServerConnection.ISettings; every?: number } = {}) {
    super();
    this.addClass('xgen-section');
    this.addClass('xgen-usage');
    this.node.dataset.testid = 'xgen-usage';
    this._scope = h('select', { className: 'jp-mod-styled', 'data-testid': 'xgen-usage-scope',
      title: 'Your usage, or every user\'s on this box',
      onchange: () => void this.refresh() },
      h('option', { value: 'mine' }, 'Mine'), h('option', { value: 'box' }, 'Whole box'));
    this._table = h('table', { className: 'xgen-usage-table', 'data-testid': 'xgen-usage-table' });
    this._message = h('div', { className: 'xgen-muted', 'data-testid': 'xgen-usage-message' });
    setChildren(
      this.node,
      h('h3', { className: 'xgen-heading' }, 'Usage',
        h('button', { className: 'jp-mod-styled xgen-usage-refresh', type: 'button', title: 'Refresh',
          'data-testid': 'xgen-usage-refresh', onclick: () => void this.refresh() }, '↻')),
      this._scope,
      this._table,
      this._message
    );
  }

  get scope(): UsageScope {
    return this._scope.value === 'box' ? 'box' : 'mine';
  }

  set scope(scope: UsageScope) {
    this._scope.value = scope;
  }

  get answer(): IUsageAnswer | null {
    return this._answer;
  }

  /** Ask the books again (the section also refreshes itself every `every` ms while shown). */
  async refresh(): Promise<void> {
    try {
      this._answer = await requestAPI<IUsageAnswer>(['usage'], {}, { scope: this.scope }, this.options.settings);
      this.render();
    } catch (err) {
      this._message.textContent = err instanceof Error ? err.message : String(err);
      this._message.classList.add('xgen-error');
    }
  }

  protected onAfterAttach(): void {
    const every = this.options.every ?? 15000;
    if (every > 0) {
      this._timer = window.setInterval(() => void this.refresh(), every);
    }
  }

  protected onBeforeDetach(): void {
    window.clearInterval(this._timer);
  }

  private render(): void {
    const answer = this._answer;
    const rows = answer?.rows ?? [];
    const box = answer?.scope === 'box';
    this._message.classList.remove('xgen-error');
    this._message.textContent = rows.length
      ? 'Tokens: as each user\'s proxy counted them. Memory: planned bytes while ready, to the owner.'
      : box ? 'Nothing booked on this box yet.' : 'Nothing booked for you yet.';
    if (!rows.length) {
      setChildren(this._table);
      return;
    }
    const line = (cells: (string | number)[], cls: string, testid: string, attrs: Record<string, string> = {}) =>
      h('tr', { className: cls, 'data-testid': testid, ...attrs }, ...cells.map(c => h('td', {}, String(c))));
    const head = h('tr', {}, ...[...(box ? ['User'] : []), 'Model', 'Requests', 'Tokens in/out', 'GPU', 'Host']
      .map(t => h('th', {}, t)));
    const cells = (r: Omit<IUsageRow, 'user' | 'model'>) => [formatCount(r.requests),
      `${formatCount(r.prompt_tokens)}/${formatCount(r.completion_tokens)}`,
      formatByteSeconds(r.gpu_byte_seconds), formatByteSeconds(r.host_byte_seconds)];
    const body = rows.map(r => line([...(box ? [r.user === answer?.user ? 'you' : r.user] : []), r.model, ...cells(r)],
      'xgen-usage-row', 'xgen-usage-row', { 'data-user': r.user, 'data-model': r.model }));
    if (rows.length > 1 && answer) {
      body.push(line([...(box ? [''] : []), 'Total', ...cells(answer.totals)], 'xgen-usage-total', 'xgen-usage-total'));
    }
    setChildren(this._table, head, ...body);
  }

  private _answer: IUsageAnswer | null = null;
  private _timer = 0;
  private readonly _scope: HTMLSelectElement;
  private readonly _table: HTMLElement;
  private readonly _message: HTMLElement;
}
