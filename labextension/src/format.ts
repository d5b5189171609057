/** Pure formatting helpers. */
import { IBoxDevice, IGPU, IQueue, IReason } from './types';

const GIB = 1024 ** 3;
const MIB = 1024 ** 2;

/** Bytes as GiB with one decimal ("7.8 GiB"); small values in MiB; null → "–". */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !isFinite(bytes) || bytes < 0) {
    return '–';
  }
  if (bytes < GIB) {
    return `${Math.round(bytes / MIB)} MiB`;
  }
  return `${(bytes / GIB).toFixed(1)} GiB`;
}

/** Bytes in GiB with two decimals, as the box registry's refusals say them ("1.35 GiB"); 0 → "0 GiB". */
export function formatGiB(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !isFinite(bytes) || bytes < 0) {
    return '–';
  }
  return bytes === 0 ? '0 GiB' : `${(bytes / GIB).toFixed(2)} GiB`;
}

/**
 * The GPUs a box server holds, short ("GPU 0, GPU 1") with the full labels for a
 * tooltip; "cpu" when it holds none (host RAM has its own column).
 */
export function formatDevices(devices: (IBoxDevice | string)[] | null | undefined): { text: string; title: string } {
  const gpus = (devices ?? [])
    .map(d => (typeof d === 'string' ? { device: d, label: d, kind: 'gpu', bytes: 0 } : d))
    .filter(d => d.kind === 'gpu');
  if (!gpus.length) {
    return { text: 'cpu', title: 'no GPU: runs on the CPU' };
  }
  const label = (d: IBoxDevice) => d.label || d.device;
  return {
    text: gpus.map(d => label(d).replace(/\s*\(.*\)$/, '')).join(', '),
    title: gpus.map(label).join('\n')
  };
}

/** "used / total" for a GPU, with the used part derived from free when missing. */
export function gpuMemory(gpu: IGPU): { used: number | null; total: number | null; fraction: number | null } {
  const total = gpu.memory_total ?? null;
  let used = gpu.memory_used ?? null;
  if (used === null && total !== null && gpu.memory_free !== null && gpu.memory_free !== undefined) {
    used = total - gpu.memory_free;
  }
  const fraction = used !== null && total ? Math.min(1, Math.max(0, used / total)) : null;
  return { used, total, fraction };
}

/** Utilisation in percent (0-100, as NVML and amdsmi report it); null → "–". */
export function formatPercent(value: number | null | undefined): string {
  if (value === null || value === undefined || !isFinite(value)) {
    return '–';
  }
  return `${Math.round(Math.min(100, Math.max(0, value)))}%`;
}

/** One reason as a line: "[rule] effect: why", warnings marked with "!". */
export function formatReason(reason: IReason): string {
  const mark = reason.level === 'warning' ? '! ' : '';
  const effect = reason.effect ? ` ${reason.effect}` : '';
  return `${mark}[${reason.rule}]${effect}: ${reason.why}`;
}

/** Warnings first, stable otherwise. */
export function sortReasons(reasons: IReason[]): IReason[] {
  const rank = (r: IReason) => (r.level === 'warning' ? 0 : 1);
  return reasons
    .map((r, i) => [r, i] as const)
    .sort((a, b) => rank(a[0]) - rank(b[0]) || a[1] - b[1])
    .map(([r]) => r);
}

/** Progress 0..1 (or null: unknown) as a label. */
export function formatProgress(progress: number | null | undefined, message?: string): string {
  const pct = progress === null || progress === undefined ? '' : `${Math.round(progress * 100)}%`;
  return [pct, message ?? ''].filter(Boolean).join(' ').trim() || 'starting…';
}

/** The error body of the contract, as one human line. */
export function formatError(body: unknown, fallback: string): string {
  if (body && typeof body === 'object') {
    const b = body as { message?: string; hint?: string | null; error?: string };
    if (b.message) {
      return b.hint ? `${b.message} (${b.hint})` : b.message;
    }
  }
  return fallback;
}

/**
 * "n queued (you: position k)": requests waiting for a server's slots and where `user`'s are
 * (1 = next); null when nothing waits.
 */
export function formatQueue(queue: IQueue | null | undefined, user: string | null): string | null {
  if (!queue || !queue.queued) {
    return null;
  }
  const mine = user ? (queue.positions ?? {})[user] ?? [] : [];
  const you = mine.length ? ` (you: position${mine.length > 1 ? 's' : ''} ${mine.join(', ')})` : '';
  return `${queue.queued} queued${you}`;
}
