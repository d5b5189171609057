/**
 * "On this box": every user's servers on this machine (`servers?scope=box`), so a
 * user sees who holds which GPU before loading. Only the listed fields are read:
 * the API sends no keys or logs here, and nothing else would be shown if it did.
 */
import { Widget } from '@lumino/widgets';
import { h, setChildren } from '../dom';
import { formatDevices, formatGiB } from '../format';
import { IState } from '../model';
import { IBoxServer } from '../types';

function boxRow(entry: IBoxServer): HTMLElement {
  const devices = formatDevices(entry.devices);
  const shared = entry.shared_with?.length ? `shared with ${entry.shared_with.join(', ')}` : '';
  return h(
    'tr',
    {
      className: `xgen-box-row${entry.mine ? ' xgen-box-mine' : ''}`,
      'data-testid': 'xgen-box-row',
      'data-owner': entry.owner,
      'data-name': entry.name,
      'data-mine': String(Boolean(entry.mine))
    },
    h(
      'td',
      { className: 'xgen-box-owner', 'data-testid': 'xgen-box-owner', title: entry.owner },
      entry.mine ? 'you' : entry.owner
    ),
    h(
      'td',
      { className: 'xgen-box-name', 'data-testid': 'xgen-box-name', title: [entry.model, shared].filter(Boolean).join(' · ') },
      entry.name,
      // The model under the name, unless the name already says it (a load named after its model).
      entry.model !== entry.name
        ? h('div', { className: 'xgen-box-model xgen-muted', 'data-testid': 'xgen-box-model' }, entry.model)
        : null
    ),
    h('td', { className: 'xgen-box-devices', 'data-testid': 'xgen-box-devices', title: devices.title }, devices.text),
    h('td', { className: 'xgen-box-gpu', 'data-testid': 'xgen-box-gpu' }, formatGiB(entry.gpu_bytes)),
    h('td', { className: 'xgen-box-host', 'data-testid': 'xgen-box-host' }, formatGiB(entry.host_bytes)),
    h(
      'td',
      {},
      h('span', { className: `xgen-server-state xgen-state-${entry.state}`, 'data-testid': 'xgen-box-state' }, entry.state)
    )
  );
}

export class BoxList extends Widget {
  constructor() {
    super();
    this.addClass('xgen-section');
    this.addClass('xgen-box');
    this.node.dataset.testid = 'xgen-box';
  }

  render(state: IState): void {
    const entries = state.box ?? [];
    const body =
      state.box === null
        ? state.boxError
          ? null
          : h('div', { className: 'xgen-muted', 'data-testid': 'xgen-box-loading' }, 'Loading…')
        : entries.length
          ? h(
              'table',
              { className: 'xgen-box-table' },
              h(
                'thead',
                {},
                h(
                  'tr',
                  {},
                  ['Owner', 'Server', 'Devices', 'GPU', 'Host', 'State'].map(t => h('th', {}, t))
                )
              ),
              h('tbody', {}, entries.map(boxRow))
            )
          : h('div', { className: 'xgen-muted', 'data-testid': 'xgen-box-empty' }, 'No servers on this box.');
    const error = state.boxError
      ? h('div', { className: 'xgen-error', 'data-testid': 'xgen-box-error' }, `Could not list this box’s servers: ${state.boxError}`)
      : null;
    setChildren(
      this.node,
      h(
        'details',
        {
          className: 'xgen-box-details',
          'data-testid': 'xgen-box-details',
          // Keep the user's open/closed choice across re-renders.
          open: this._open,
          ontoggle: (ev: Event) => {
            this._open = (ev.currentTarget as HTMLDetailsElement).open;
          }
        },
        h(
          'summary',
          { className: 'xgen-heading', 'data-testid': 'xgen-box-summary' },
          'On this box',
          state.box ? h('span', { className: 'xgen-box-count' }, ` (${entries.length})`) : null
        ),
        body,
        error
      )
    );
  }

  private _open = true;
}
