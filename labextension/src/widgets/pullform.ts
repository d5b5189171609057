/** "Get a model": pull a GGUF (or a Hugging Face folder) from the hub, with a progress bar. */
import { Widget } from '@lumino/widgets';
import { h, setChildren } from '../dom';
import { formatBytes } from '../format';
import { IState } from '../model';
import { XgenStore } from '../store';
import { IPullJob, IPullProgress } from '../types';

/** `file: 45% of 2.5 GB, 35.1 MB/s` (or what the pull is doing when it is not downloading). */
export function pullText(p: IPullProgress | null): string {
  if (!p) {
    return 'starting…';
  }
  const pct = `${Math.floor((p.fraction ?? 0) * 100)}% of ${formatBytes(p.total)}`;
  if (p.state === 'waiting') {
    return `${p.file}: ${pct}, downloaded by another pull; waiting`;
  }
  if (p.state === 'verifying') {
    return `${p.file}: checking sha256`;
  }
  const rate = p.rate > 0 && p.state === 'downloading' ? `, ${formatBytes(p.rate)}/s` : '';
  return `${p.file}: ${pct}${rate}`;
}

export class PullForm extends Widget {
  /** Called with the job when a pull this form started is done (the sidebar refreshes its model list). */
  onPulled: ((job: IPullJob) => void) | null = null;

  constructor(private readonly store: XgenStore) {
    super({ node: document.createElement('form') });
    this.addClass('xgen-section');
    this.addClass('xgen-pull-form');
    this.node.dataset.testid = 'xgen-pull-form';
    this._spec = h('input', {
      className: 'jp-mod-styled',
      name: 'spec',
      type: 'text',
      placeholder: 'owner/repo-GGUF[:Q4_K_M]',
      title: 'A Hugging Face repo, optionally :QUANT (Q4_K_M when not said) or :a-file.gguf',
      'data-testid': 'xgen-pull-input'
    });
    this._submit = h(
      'button',
      { className: 'jp-mod-styled jp-mod-accept', type: 'submit', 'data-testid': 'xgen-pull-button' },
      'Get'
    );
    this._progress = h('div', { className: 'xgen-progress', 'data-testid': 'xgen-pull-progress', hidden: true });
    this._message = h('div', { className: 'xgen-load-message', 'data-testid': 'xgen-pull-message' });
    setChildren(
      this.node,
      h('h3', { className: 'xgen-heading' }, 'Get a model'),
      h('label', { className: 'xgen-field' }, h('span', {}, 'Repo'), this._spec),
      h('div', { className: 'xgen-form-actions' }, this._submit),
      this._progress,
      this._message
    );
    this.node.addEventListener('submit', ev => {
      ev.preventDefault();
      void this.submit(this._spec.value.trim());
    });
  }

  async submit(spec: string): Promise<void> {
    if (!spec) {
      this.showMessage('Name a repo, e.g. unsloth/gemma-3-270m-it-GGUF', true);
      return;
    }
    this._submit.disabled = true;
    this.showMessage('', false);
    try {
      const job = await this.store.pull(spec);
      this._pending = job.id;
    } catch (err) {
      this._pending = null;
      this._submit.disabled = false;
      this.showMessage(err instanceof Error ? err.message : String(err), true);
    }
    this.render(this.store.state);
  }

  render(state: IState): void {
    const job = this._pending ? state.pulls[this._pending] : undefined;
    if (!job) {
      this._progress.hidden = true;
      return;
    }
    if (job.state === 'running') {
      const frac = job.progress?.fraction ?? null;
      this._progress.hidden = false;
      setChildren(
        this._progress,
        h(
          'div',
          { className: `xgen-bar${frac === null ? ' xgen-indeterminate' : ''}` },
          h('div', { className: 'xgen-bar-fill', style: `width: ${frac === null ? 100 : Math.round(frac * 100)}%` })
        ),
        h('div', { className: 'xgen-muted' }, pullText(job.progress))
      );
      return;
    }
    this._progress.hidden = true;
    this._pending = null;
    this._submit.disabled = false;
    if (job.state === 'done' && job.result) {
      this.showMessage(`Pulled ${job.result.name} (${formatBytes(job.result.size)}): pick it under "Load a model".`, false);
      this.onPulled?.(job);
    } else {
      const e = job.error;
      this.showMessage(e ? (e.hint ? `${e.message} (${e.hint})` : e.message) : 'The pull failed', true);
    }
  }

  private showMessage(text: string, error: boolean): void {
    this._message.textContent = text;
    this._message.classList.toggle('xgen-error', error);
  }

  private _pending: string | null = null;
  private readonly _spec: HTMLInputElement;
  private readonly _submit: HTMLButtonElement;
  private readonly _progress: HTMLElement;
  private readonly _message: HTMLElement;
}
