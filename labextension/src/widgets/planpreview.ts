/**
 * Under the load form, before Load is clicked: the plan's predicted memory on each card (and in
 * host RAM) against what is free now, and its predicted tokens/s. The bars follow the live
 * `gpus` samples; the plan itself is re-asked only when the form changes (loadform.ts).
 */
import { Widget } from '@lumino/widgets';
import { h, setChildren } from '../dom';
import { IState } from '../model';
import { barWidths, predictionText, previewRows, rowText } from '../preview';
import { IPlan } from '../types';

export class PlanPreview extends Widget {
  constructor() {
    super();
    this.addClass('xgen-plan-preview');
    this.node.dataset.testid = 'xgen-plan-preview';
    this.node.hidden = true;
  }

  get plan(): IPlan | null {
    return this._plan;
  }

  /** A new plan (null: clear); drawn against the state's latest GPU samples. */
  showPlan(plan: IPlan | null, state: IState): void {
    this._plan = plan;
    this._error = null;
    this.render(state);
  }

  /** The plan could not be made: say why (the API's message and hint) where the bars would be. */
  showError(message: string): void {
    this._plan = null;
    this._error = message;
    this.node.hidden = false;
    setChildren(this.node, h('div', { className: 'xgen-error', 'data-testid': 'xgen-plan-error' }, message));
  }

  render(state: IState): void {
    if (this._error !== null) {
      return;
    }
    const plan = this._plan;
    this.node.hidden = plan === null;
    if (!plan) {
      setChildren(this.node);
      return;
    }
    const gpus = state.gpus.length ? state.gpus : state.hardware?.gpus ?? [];
    const rows = previewRows(plan, gpus, state.hardware).map(row => {
      const w = barWidths(row);
      const bar = h(
        'div',
        { className: 'xgen-bar xgen-preview-bar' },
        h('div', { className: 'xgen-bar-used', style: `width: ${w?.used ?? 0}%` }),
        h('div', {
          className: `xgen-bar-planned${row.over ? ' xgen-bar-high' : ''}`,
          style: `width: ${w?.planned ?? 0}%`
        }),
        h('div', { className: 'xgen-bar-label' }, rowText(row))
      );
      return h(
        'div',
        {
          className: `xgen-preview-row${row.over ? ' xgen-preview-over' : ''}`,
          'data-testid': 'xgen-preview-row',
          'data-key': row.key,
          title: row.over ? 'more than is free now: the load would be refused or run out of memory' : ''
        },
        h('div', { className: 'xgen-muted' }, row.label),
        bar
      );
    });
    const speed = predictionText(plan.prediction).map(line =>
      h('div', { className: 'xgen-preview-speed', 'data-testid': 'xgen-preview-speed' }, line)
    );
    // "predicted X, last measured Y" when an earlier load of the same model and settings was measured.
    const measured = (plan.reasons ?? [])
      .filter(r => r.rule === 'calibration')
      .map(r => h('div', { className: 'xgen-muted', 'data-testid': 'xgen-preview-calibration', title: r.why }, r.effect));
    setChildren(this.node, h('div', { className: 'xgen-muted' }, `Plan: ${plan.backend}`), rows, speed, measured);
  }

  private _plan: IPlan | null = null;
  private _error: string | null = null;
}
