/** The load form: model, backend, context size; a progress bar while loading. */
import { Widget } from '@lumino/widgets';
import { h, setChildren } from '../dom';
import { formatBytes, formatProgress } from '../format';
import { IState, isLoading, progressOf } from '../model';
import { XgenStore } from '../store';
import { IBackendEntry, ILoadRequest, IModelEntry } from '../types';
import { PlanPreview } from './planpreview';

/** How long the form must stay unchanged before the preview's plan is asked for (ms). */
export const PREVIEW_DEBOUNCE_MS = 400;

export class LoadForm extends Widget {
  constructor(
    private readonly store: XgenStore,
    private readonly debounceMs = PREVIEW_DEBOUNCE_MS
  ) {
    super({ node: document.createElement('form') });
    this.addClass('xgen-section');
    this.addClass('xgen-load-form');
    this.node.dataset.testid = 'xgen-load-form';
    this._model = h('select', { className: 'jp-mod-styled', name: 'model', 'data-testid': 'xgen-model-select' });
    this._backend = h('select', { className: 'jp-mod-styled', name: 'backend', 'data-testid': 'xgen-backend-select' });
    this._ctx = h('input', {
      className: 'jp-mod-styled',
      name: 'n_ctx',
      type: 'number',
      min: 0,
      step: 256,
      placeholder: 'auto',
      'data-testid': 'xgen-ctx-input'
    });
    this._name = h('input', {
      className: 'jp-mod-styled',
      name: 'name',
      type: 'text',
      placeholder: 'same as model',
      'data-testid': 'xgen-name-input'
    });
    this._submit = h(
      'button',
      { className: 'jp-mod-styled jp-mod-accept', type: 'submit', 'data-testid': 'xgen-load-button' },
      'Load'
    );
    this._progress = h('div', { className: 'xgen-progress', 'data-testid': 'xgen-load-progress', hidden: true });
    this._message = h('div', { className: 'xgen-load-message', 'data-testid': 'xgen-load-message' });
    const field = (label: string, input: HTMLElement) =>
      h('label', { className: 'xgen-field' }, h('span', {}, label), input);
    setChildren(
      this.node,
      h('h3', { className: 'xgen-heading' }, 'Load a model'),
      field('Model', this._model),
      field('Backend', this._backend),
      field('Context', this._ctx),
      field('Name', this._name),
      this.preview.node,
      h('div', { className: 'xgen-form-actions' }, this._submit),
      this._progress,
      this._message
    );
    for (const kind of ['input', 'change']) {
      this.node.addEventListener(kind, () => this.schedulePreview());
    }
    this.node.addEventListener('submit', ev => {
      ev.preventDefault();
      void this.submit(this.request());
    });
  }

  /** Fetch the model and backend choices (kept stable: the user's pick survives). */
  async refreshChoices(): Promise<void> {
    try {
      const [models, backends] = await Promise.all([this.store.models(), this.store.backends()]);
      this.fillModels(models);
      this.fillBackends(backends);
      this.schedulePreview();
    } catch (err) {
      this.showMessage(err instanceof Error ? err.message : String(err), true);
    }
  }

  focusModel(): void {
    this._model.focus();
  }

  /** The request the form describes now. */
  request(): ILoadRequest {
    const req: ILoadRequest = { model: this._model.value || 'default' };
    if (this._backend.value && this._backend.value !== 'auto') {
      req.backend = this._backend.value;
    }
    const ctx = parseInt(this._ctx.value, 10);
    if (Number.isFinite(ctx) && ctx > 0) {
      req.n_ctx = ctx;
    }
    if (this._name.value.trim()) {
      req.name = this._name.value.trim();
    }
    return req;
  }

  /** Ask for the plan of the form's request once the form has been still for debounceMs. */
  schedulePreview(): void {
    if (this._previewTimer !== null) {
      clearTimeout(this._previewTimer);
    }
    this._previewTimer = setTimeout(() => {
      this._previewTimer = null;
      void this.updatePreview();
    }, this.debounceMs);
  }

  /** Plan the form's request now; an answer overtaken by a newer request is dropped. */
  async updatePreview(): Promise<void> {
    const seq = ++this._previewSeq;
    try {
      const plan = await this.store.plan(this.request());
      if (seq === this._previewSeq) {
        this.preview.showPlan(plan, this.store.state);
      }
    } catch (err) {
      if (seq === this._previewSeq) {
        this.preview.showError(err instanceof Error ? err.message : String(err));
      }
    }
  }

  dispose(): void {
    if (this._previewTimer !== null) {
      clearTimeout(this._previewTimer);
    }
    super.dispose();
  }

  async submit(req: ILoadRequest): Promise<void> {
    this._submit.disabled = true;
    this.showMessage('', false);
    try {
      const server = await this.store.load(req);
      this._pending = server.name;
      this.store.selected = server.name;
    } catch (err) {
      this._pending = null;
      this.showMessage(err instanceof Error ? err.message : String(err), true);
    } finally {
      this._submit.disabled = false;
      this.render(this.store.state);
    }
  }

  render(state: IState): void {
    this.preview.render(state); // the bars follow the live free memory
    const name = this._pending;
    const server = name ? state.servers[name] : undefined;
    if (!name) {
      this._progress.hidden = true;
      return;
    }
    if (server && isLoading(server.state)) {
      const p = progressOf(state, name);
      const frac = p?.progress ?? null;
      this._progress.hidden = false;
      this._progress.dataset.state = server.state;
      setChildren(
        this._progress,
        h(
          'div',
          { className: `xgen-bar${frac === null ? ' xgen-indeterminate' : ''}` },
          h('div', { className: 'xgen-bar-fill', style: `width: ${frac === null ? 100 : Math.round(frac * 100)}%` })
        ),
        h('div', { className: 'xgen-muted' }, `${name}: ${formatProgress(frac, p?.message ?? server.state)}`)
      );
      return;
    }
    // Settled (or gone): hide the bar and say how it ended.
    this._progress.hidden = true;
    this._pending = null;
    if (server?.state === 'ready') {
      this.showMessage(`${name} is ready.`, false);
    } else if (server && (server.state === 'failed' || server.state === 'crashed')) {
      this.showMessage(`${name} ${server.state}: ${server.error?.summary ?? 'see its log'}`, true);
    }
  }

  private fillModels(models: IModelEntry[]): void {
    const current = this._model.value;
    setChildren(
      this._model,
      models.map(m =>
        h(
          'option',
          { value: m.name, title: m.path ?? '' },
          m.size ? `${m.name} (${formatBytes(m.size)})` : m.name
        )
      )
    );
    if (!models.length) {
      this._model.appendChild(h('option', { value: 'default' }, 'default'));
    }
    this._model.value = models.some(m => m.name === current) ? current : this._model.options[0]?.value ?? '';
  }

  private fillBackends(backends: { [id: string]: IBackendEntry }): void {
    const current = this._backend.value || 'auto';
    const ids = Object.keys(backends).sort();
    const available = ids.filter(id => backends[id].available);
    const missing = ids.filter(id => !backends[id].available);
    setChildren(
      this._backend,
      h('option', { value: 'auto' }, 'auto'),
      available.map(id => h('option', { value: id }, id)),
      missing.map(id =>
        h('option', { value: id, disabled: true, title: backends[id].reason ?? '' }, `${id} (unavailable)`)
      )
    );
    this._backend.value = available.includes(current) ? current : 'auto';
  }

  private showMessage(text: string, error: boolean): void {
    this._message.textContent = text;
    this._message.classList.toggle('xgen-error', error);
  }

  readonly preview = new PlanPreview();
  private _previewTimer: ReturnType<typeof setTimeout> | null = null;
  private _previewSeq = 0;
  private _pending: string | null = null;
  private readonly _model: HTMLSelectElement;
  private readonly _backend: HTMLSelectElement;
  private readonly _ctx: HTMLInputElement;
  private readonly _name: HTMLInputElement;
  private readonly _submit: HTMLButtonElement;
  private readonly _progress: HTMLElement;
  private readonly _message: HTMLElement;
}
