/** The server list: state, backend, endpoint, queue, the plan's reasons, unload; then the catalog's unloaded models. */
import { Widget } from '@lumino/widgets';
import { ServerConnection } from '@jupyterlab/services';
import { proxyUrl } from '../api';
import { h, setChildren } from '../dom';
import { formatBytes, formatProgress, formatQueue, formatReason, sortReasons } from '../format';
import { IState, isLoading, progressOf, queueOf, reasonsOf, serverList, unloadedModels } from '../model';
import { ICatalogEntry, IServer } from '../types';
import { XgenStore } from '../store';

export class ServerList extends Widget {
  constructor(private readonly store: XgenStore) {
    super();
    this.addClass('xgen-section');
    this.addClass('xgen-servers');
    this.node.dataset.testid = 'xgen-servers';
  }

  render(state: IState): void {
    const servers = serverList(state);
    const body = servers.length
      ? h('ul', { className: 'xgen-server-list' }, servers.map(s => this.row(state, s)))
      : h('div', { className: 'xgen-empty xgen-muted', 'data-testid': 'xgen-no-servers' }, 'No model loaded.');
    const catalog = unloadedModels(state);
    setChildren(
      this.node,
      h('h3', { className: 'xgen-heading' }, 'Servers'),
      body,
      catalog.length
        ? h(
            'div',
            { className: 'xgen-catalog', 'data-testid': 'xgen-catalog' },
            h('div', { className: 'xgen-muted' }, 'Not loaded (a request for one loads it):'),
            h('ul', { className: 'xgen-catalog-list' }, catalog.map(m => this.catalogRow(m)))
          )
        : null
    );
  }

  private catalogRow(entry: ICatalogEntry): HTMLElement {
    return h(
      'li',
      { className: 'xgen-catalog-row', 'data-testid': 'xgen-catalog-row', 'data-name': entry.id },
      h('span', { className: 'xgen-catalog-name' }, entry.id),
      h('span', { className: 'xgen-muted' }, ` ${entry.catalog ?? ''}${entry.size ? ` · ${formatBytes(entry.size)}` : ''} `),
      h(
        'button',
        {
          className: 'jp-mod-styled jp-mod-accept xgen-catalog-load',
          'data-testid': 'xgen-catalog-load',
          title: `Load ${entry.id}`,
          disabled: this._loading.has(entry.id),
          onclick: (ev: Event) => {
            (ev.currentTarget as HTMLButtonElement).disabled = true;
            this._loading.add(entry.id);
            void this.store
              .load({ model: entry.id })
              .catch(err => this.showRowError(entry.id, err))
              .finally(() => this._loading.delete(entry.id));
          }
        },
        'Load'
      ),
      h('div', { className: 'xgen-row-error', 'data-testid': 'xgen-row-error' })
    );
  }

  private row(state: IState, server: IServer): HTMLElement {
    const selected = this.store.selected === server.name;
    const reasons = sortReasons(reasonsOf(server));
    const warnings = reasons.filter(r => r.level === 'warning').length;
    const progress = isLoading(server.state) ? progressOf(state, server.name) : null;
    const queue = formatQueue(queueOf(state, server.name), state.user);
    return h(
      'li',
      {
        className: `xgen-server-row${selected ? ' xgen-selected' : ''}`,
        'data-testid': 'xgen-server-row',
        'data-name': server.name,
        'data-state': server.state
      },
      h(
        'div',
        { className: 'xgen-server-head' },
        h(
          'button',
          {
            className: 'xgen-server-name xgen-link',
            title: 'Show this server’s log',
            onclick: () => {
              this.store.selected = server.name;
              this.render(this.store.state);
            }
          },
          server.name
        ),
        h(
          'span',
          { className: `xgen-server-state xgen-state-${server.state}`, 'data-testid': 'xgen-server-state' },
          server.state
        ),
        h(
          'button',
          {
            className: 'jp-mod-styled jp-mod-warn xgen-unload',
            'data-testid': 'xgen-unload',
            title: `Unload ${server.name}`,
            disabled: this._unloading.has(server.name) || server.state === 'stopping',
            onclick: (ev: Event) => {
              (ev.currentTarget as HTMLButtonElement).disabled = true;
              this._unloading.add(server.name);
              void this.store
                .unload(server.name)
                .catch(err => this.showRowError(server.name, err))
                .finally(() => this._unloading.delete(server.name));
            }
          },
          'Unload'
        )
      ),
      h(
        'div',
        { className: 'xgen-server-meta' },
        h('span', { className: 'xgen-server-backend', 'data-testid': 'xgen-server-backend' }, server.backend),
        h('span', { className: 'xgen-muted' }, ' · '),
        h('span', { className: 'xgen-server-model', title: server.model_path ?? '' }, server.model)
      ),
      server.endpoint
        ? h(
            'div',
            { className: 'xgen-server-urls' },
            h('span', { className: 'xgen-muted' }, 'engine '),
            h('code', { className: 'xgen-server-endpoint', 'data-testid': 'xgen-server-endpoint' }, server.endpoint),
            h('br'),
            h('span', { className: 'xgen-muted' }, 'proxy '),
            h(
              'code',
              {
                className: 'xgen-server-proxy',
                'data-testid': 'xgen-server-proxy',
                title: `OpenAI-compatible: base_url=${this._proxy}, model="${server.name}"`
              },
              this._proxy
            )
          )
        : null,
      progress
        ? h('div', { className: 'xgen-muted xgen-server-progress' }, formatProgress(progress.progress, progress.message))
        : null,
      queue ? h('div', { className: 'xgen-server-queue', 'data-testid': 'xgen-server-queue' }, queue) : null,
      server.error
        ? h('div', { className: 'xgen-server-error', 'data-testid': 'xgen-server-error' }, `[${server.error.id}] ${server.error.summary}`)
        : null,
      reasons.length
        ? h(
            'details',
            {
              className: 'xgen-reasons',
              'data-testid': 'xgen-reasons',
              // Keep the user's open/closed choice across re-renders; warnings open by default.
              open: this._open.get(server.name) ?? warnings > 0,
              ontoggle: (ev: Event) => this._open.set(server.name, (ev.currentTarget as HTMLDetailsElement).open)
            },
            h(
              'summary',
              {},
              `Plan: ${reasons.length} reason${reasons.length === 1 ? '' : 's'}`,
              warnings ? h('span', { className: 'xgen-warning-count' }, ` (${warnings} warning${warnings === 1 ? '' : 's'})`) : null
            ),
            h(
              'ul',
              {},
              reasons.map(r =>
                h(
                  'li',
                  { className: `xgen-reason xgen-reason-${r.level}`, 'data-rule': r.rule, title: formatReason(r) },
                  h('span', { className: 'xgen-reason-rule' }, r.rule),
                  r.effect ? h('span', { className: 'xgen-reason-effect' }, ` ${r.effect}`) : null,
                  h('div', { className: 'xgen-reason-why' }, r.why)
                )
              )
            )
          )
        : null,
      h('div', { className: 'xgen-row-error', 'data-testid': 'xgen-row-error' })
    );
  }

  private readonly _proxy = proxyUrl(ServerConnection.makeSettings().baseUrl);
  private readonly _open = new Map<string, boolean>();
  private readonly _unloading = new Set<string>();
  private readonly _loading = new Set<string>();

  private showRowError(name: string, err: unknown): void {
    const row = this.node.querySelector(`[data-name="${CSS.escape(name)}"] .xgen-row-error`);
    if (row) {
      row.textContent = err instanceof Error ? err.message : String(err);
    }
  }
}
