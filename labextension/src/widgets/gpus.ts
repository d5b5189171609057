/**
 * The GPU table: memory bars and utilisation, re-rendered on every sample. On a Ray
 * cluster (GPUs carry a node) a header row per node heads that node's GPUs.
 */
import { Widget } from '@lumino/widgets';
import { h, setChildren } from '../dom';
import { formatBytes, formatPercent, gpuMemory } from '../format';
import { gpuGroups, gpuKey, IState } from '../model';
import { IGPU } from '../types';

function memoryBar(gpu: IGPU): HTMLElement {
  const { used, total, fraction } = gpuMemory(gpu);
  const pct = fraction === null ? 0 : Math.round(fraction * 100);
  const level = pct >= 90 ? 'high' : pct >= 70 ? 'mid' : 'low';
  return h(
    'div',
    { className: 'xgen-bar', 'data-testid': 'xgen-gpu-mem', title: `${pct}% used` },
    h('div', { className: `xgen-bar-fill xgen-bar-${level}`, style: `width: ${pct}%` }),
    h('span', { className: 'xgen-bar-label' }, `${formatBytes(used)} / ${formatBytes(total)}`)
  );
}

function gpuRow(gpu: IGPU): HTMLElement {
  return h(
    'tr',
    {
      className: 'xgen-gpu-row',
      'data-testid': 'xgen-gpu-row',
      'data-index': gpu.index,
      'data-node': gpu.node ?? null,
      'data-key': gpuKey(gpu)
    },
    h('td', { className: 'xgen-gpu-index' }, gpu.index),
    h(
      'td',
      { className: 'xgen-gpu-name', title: [gpu.name, gpu.arch, gpu.pci_bus_id].filter(Boolean).join(' · ') },
      gpu.name
    ),
    h('td', { className: 'xgen-gpu-mem' }, memoryBar(gpu)),
    h('td', { className: 'xgen-gpu-util', 'data-testid': 'xgen-gpu-util' }, formatPercent(gpu.utilization))
  );
}

function nodeRow(node: string | null, count: number): HTMLElement {
  return h(
    'tr',
    { className: 'xgen-gpu-node', 'data-testid': 'xgen-gpu-node', 'data-node': node ?? '' },
    h(
      'th',
      { colspan: 4 },
      h('span', { className: 'xgen-gpu-node-name' }, node ? `Node ${node}` : 'Node unknown'),
      h('span', { className: 'xgen-muted' }, ` · ${count} GPU${count === 1 ? '' : 's'}`)
    )
  );
}

function cpuLine(state: IState): HTMLElement {
  const cpu = state.hardware?.cpu;
  const parts = cpu
    ? [
        cpu.model_name,
        cpu.cores_logical ? `${cpu.cores_logical} threads` : null,
        cpu.memory_total ? `${formatBytes(cpu.memory_available)} free of ${formatBytes(cpu.memory_total)} RAM` : null
      ].filter(Boolean)
    : [];
  return h(
    'div',
    { className: 'xgen-cpu', 'data-testid': 'xgen-cpu' },
    h('span', { className: 'xgen-muted' }, state.gpus.length ? 'CPU: ' : 'No GPU detected. CPU: '),
    parts.length ? parts.join(', ') : 'unknown'
  );
}

/** Where models run: the box service (its socket, who we are to it) or this Jupyter server. */
function coreLine(state: IState): HTMLElement | null {
  if (!state.core) {
    return null;
  }
  const shared = state.core.startsWith('box service');
  return h(
    'div',
    { className: 'xgen-core', 'data-testid': 'xgen-core', 'data-shared': shared ? 'yes' : 'no' },
    h('span', { className: 'xgen-muted' }, 'Models run: '),
    state.core
  );
}

export class GpuPanel extends Widget {
  constructor() {
    super();
    this.addClass('xgen-section');
    this.addClass('xgen-gpus');
    this.node.dataset.testid = 'xgen-gpus';
  }

  render(state: IState): void {
    const clustered = state.gpus.some(g => g.node !== null && g.node !== undefined);
    const table = state.gpus.length
      ? h(
          'table',
          { className: 'xgen-gpu-table' },
          h('thead', {}, h('tr', {}, h('th', {}, '#'), h('th', {}, 'GPU'), h('th', {}, 'Memory'), h('th', {}, 'Util'))),
          // One tbody per node; on one box a single group without a header, as before.
          gpuGroups(state.gpus).map(g =>
            h('tbody', { 'data-node': g.node }, clustered ? nodeRow(g.node, g.gpus.length) : null, g.gpus.map(gpuRow))
          )
        )
      : null;
    setChildren(
      this.node,
      h('h3', { className: 'xgen-heading' }, 'Hardware'),
      table,
      cpuLine(state),
      coreLine(state)
    );
  }
}
