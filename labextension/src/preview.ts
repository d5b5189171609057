/**
 * The load form's preview, pure: per device the plan's predicted bytes against what is free
 * now (from the events socket's latest `gpus`), and the predicted tokens/s of the plan.
 */
import { formatBytes } from './format';
import { IGPU, IHardwareReport, IPlan, IPrediction } from './types';

export interface IPreviewRow {
  /** "gpu:<index>" or "host". */
  key: string;
  label: string;
  planned: number;
  free: number | null;
  total: number | null;
  /** The plan takes more than is free now (someone else took memory since). */
  over: boolean;
}

/** One row per card the plan uses, then host RAM for the CPU share (when it has one). */
export function previewRows(plan: IPlan, gpus: IGPU[], hardware: IHardwareReport | null): IPreviewRow[] {
  const mem = plan.memory;
  if (!mem) {
    return [];
  }
  const rows: IPreviewRow[] = [];
  const ids = plan.gpus ?? [];
  ids.forEach((index, i) => {
    const planned = mem.per_gpu && mem.per_gpu.length ? mem.per_gpu[i] ?? 0 : mem.gpu_total;
    const gpu = gpus.find(g => g.index === index && !g.node) ?? gpus.find(g => g.index === index);
    const free = gpu?.memory_free ?? null;
    const total = gpu?.memory_total ?? null;
    rows.push({
      key: `gpu:${index}`,
      label: gpu ? `GPU ${index} ${gpu.name}` : `GPU ${index}`,
      planned,
      free,
      total,
      over: free !== null && planned > free
    });
  });
  if (mem.host_total > 0 || !ids.length) {
    const cpu = hardware?.cpu;
    const free = cpu?.memory_available ?? null;
    rows.push({
      key: 'host',
      label: 'Host RAM',
      planned: mem.host_total,
      free,
      total: cpu?.memory_total ?? null,
      over: free !== null && mem.host_total > free
    });
  }
  return rows;
}

/** Bar widths in percent of the device's total: memory in use now, and the plan's share. */
export function barWidths(row: IPreviewRow): { used: number; planned: number } | null {
  if (!row.total) {
    return null;
  }
  const pct = (x: number) => Math.round(Math.min(100, Math.max(0, (x / row.total!) * 100)) * 10) / 10;
  const used = row.free !== null ? pct(row.total - row.free) : 0;
  return { used, planned: Math.min(pct(row.planned), 100 - used) };
}

export function rowText(row: IPreviewRow): string {
  const free = row.free !== null ? ` of ${formatBytes(row.free)} free` : '';
  const total = row.total ? ` (${formatBytes(row.total)})` : '';
  return `${formatBytes(row.planned)} planned${free}${total}`;
}

const STRATEGIES: { [s: string]: string } = {
  'all-gpu': 'all on the GPU',
  experts: 'experts on the CPU',
  layers: 'whole layers on the CPU',
  cpu: 'on the CPU'
};

function speed(p: IPrediction): string {
  return `~${Math.round(p.decode_tps)} t/s decode, ~${Math.round(p.prompt_tps)} t/s prompt`;
}

/** "Predicted ~37 t/s decode, ~2506 t/s prompt (experts on the CPU, -ngl 49 ...)", and the runner-up. */
export function predictionText(p: IPrediction | null | undefined): string[] {
  if (!p) {
    return [];
  }
  const how = [STRATEGIES[p.strategy] ?? p.strategy, p.flags].filter(Boolean).join(': ');
  const lines = [`Predicted ${speed(p)} (${how})`];
  if (p.runner_up) {
    const r = p.runner_up;
    lines.push(`Runner-up ${STRATEGIES[r.strategy] ?? r.strategy}${r.flags ? ` (${r.flags})` : ''}: ${speed(r)}`);
  }
  return lines;
}
