/** The xgen sidebar: hardware, servers, load form and log view in one panel. */
import { Panel } from '@lumino/widgets';
import { h } from './dom';
import { IState } from './model';
import { XgenStore } from './store';
import { BoxList } from './widgets/box';
import { GpuPanel } from './widgets/gpus';
import { KeysPanel } from './widgets/keys';
import { LoadForm } from './widgets/loadform';
import { LogView } from './widgets/logview';
import { PullForm } from './widgets/pullform';
import { ServerList } from './widgets/servers';
import { UsagePanel } from './widgets/usage';

export class XgenSidebar extends Panel {
  readonly gpus: GpuPanel;
  readonly servers: ServerList;
  readonly box: BoxList;
  readonly form: LoadForm;
  readonly pullForm: PullForm;
  readonly keys: KeysPanel;
  readonly usage: UsagePanel;
  readonly logs: LogView;

  constructor(
    readonly store: XgenStore,
    options: { logTail: () => number }
  ) {
    super();
    this.id = 'xgen-sidebar';
    this.addClass('xgen-sidebar');
    this.node.dataset.testid = 'xgen-sidebar';
    this.title.caption = 'xgen: models and GPUs';

    this._banner = h('div', { className: 'xgen-banner', 'data-testid': 'xgen-connection', hidden: true });
    this.node.appendChild(this._banner);
    this.gpus = new GpuPanel();
    this.servers = new ServerList(store);
    this.box = new BoxList();
    this.form = new LoadForm(store);
    this.pullForm = new PullForm(store);
    this.pullForm.onPulled = () => void this.form.refreshChoices(); // the new model in the Model list
    this.logs = new LogView(store, { tail: options.logTail });
    this.keys = new KeysPanel(); // API keys for scripts outside the browser (open xgen/v1 only)
    this.usage = new UsagePanel(); // the box's usage books: yours, or every user's
    for (const w of [this.gpus, this.servers, this.box, this.form, this.pullForm, this.logs, this.usage, this.keys]) {
      this.addWidget(w);
    }
    store.changed.connect((_, state) => this.render(state), this);
    store.selectedChanged.connect(() => this.servers.render(store.state), this);
    this.render(store.state, true);
    void this.form.refreshChoices();
    void this.keys.refresh();
    void this.usage.refresh();
  }

  /** Re-render only the sections whose slice of the state changed. */
  render(state: IState, force = false): void {
    const prev = this._prev;
    this._prev = state;
    this.node.dataset.connected = String(state.connected);
    this._banner.hidden = state.connected;
    this._banner.textContent = state.connected
      ? ''
      : state.error
        ? `Not connected to the xgen server (${state.error}); retrying…`
        : 'Connecting to the xgen server…';
    if (force || !prev || prev.gpus !== state.gpus || prev.hardware !== state.hardware || prev.core !== state.core) {
      this.gpus.render(state);
      this.form.preview.render(state); // the preview's bars against what is free now
    }
    if (force || !prev || prev.pulls !== state.pulls) {
      this.pullForm.render(state);
    }
    if (force || !prev || prev.box !== state.box || prev.boxError !== state.boxError) {
      this.box.render(state);
    }
    if (prev && (prev.queues !== state.queues || prev.catalog !== state.catalog || prev.user !== state.user)) {
      this.servers.render(state); // queue lines and the catalog live in the server list
    }
    if (force || !prev || prev.servers !== state.servers || prev.progress !== state.progress) {
      this.servers.render(state);
      this.form.render(state);
      if (prev && prev.servers !== state.servers && this.form.preview.plan) {
        this.form.schedulePreview(); // a server came or went: the free memory, so the plan, moved
      }
      // Follow the only server when nothing is selected, so logs show up by themselves.
      const names = Object.keys(state.servers);
      if (this.store.selected === null && names.length === 1) {
        this.store.selected = names[0];
      }
    }
  }

  dispose(): void {
    this.store.dispose();
    super.dispose();
  }

  private _prev: IState | null = null;
  private readonly _banner: HTMLElement;
}
