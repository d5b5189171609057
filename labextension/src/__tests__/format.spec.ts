import { describe, expect, it } from 'vitest';
import {
  formatBytes,
  formatDevices,
  formatError,
  formatGiB,
  formatPercent,
  formatProgress,
  formatReason,
  gpuMemory,
  sortReasons
} from '../format';
import { boxEntry, GIB, gpu } from './fixtures';

describe('formatBytes', () => {
  it('shows GiB with one decimal and small sizes in MiB', () => {
    expect(formatBytes(80 * GIB)).toBe('80.0 GiB');
    expect(formatBytes(7.75 * GIB)).toBe('7.8 GiB');
    expect(formatBytes(253 * 1024 ** 2)).toBe('253 MiB');
    expect(formatBytes(0)).toBe('0 MiB');
  });

  it('shows a dash for unknown sizes', () => {
    expect(formatBytes(null)).toBe('–');
    expect(formatBytes(undefined)).toBe('–');
    expect(formatBytes(NaN)).toBe('–');
    expect(formatBytes(-1)).toBe('–');
  });
});

describe('gpuMemory', () => {
  it('uses memory_used when given', () => {
    expect(gpuMemory(gpu(0, 20)).fraction).toBeCloseTo(0.25);
  });

  it('derives used from free when used is missing', () => {
    const g = { ...gpu(0, 0), memory_used: null, memory_free: 60 * GIB };
    expect(gpuMemory(g).used).toBe(20 * GIB);
    expect(gpuMemory(g).fraction).toBeCloseTo(0.25);
  });

  it('has no fraction without a total', () => {
    const g = { ...gpu(0, 1), memory_total: null };
    expect(gpuMemory(g).fraction).toBeNull();
  });
});

describe('formatPercent', () => {
  it('rounds and clamps percent values', () => {
    expect(formatPercent(37.4)).toBe('37%');
    expect(formatPercent(0)).toBe('0%');
    expect(formatPercent(140)).toBe('100%');
    expect(formatPercent(null)).toBe('–');
  });
});

describe('reasons', () => {
  const info = { rule: 'cpu-only', effect: 'n_gpu_layers=0', why: 'no GPU was detected', level: 'info' as const };
  const warn = { rule: 'gfx1151-fit', effect: 'fit off', why: 'fit crashes on this GPU', level: 'warning' as const };

  it('formats one reason per line, warnings marked', () => {
    expect(formatReason(info)).toBe('[cpu-only] n_gpu_layers=0: no GPU was detected');
    expect(formatReason(warn)).toBe('! [gfx1151-fit] fit off: fit crashes on this GPU');
    expect(formatReason({ ...info, effect: '' })).toBe('[cpu-only]: no GPU was detected');
  });

  it('puts warnings first and keeps the order otherwise', () => {
    const second = { ...info, rule: 'threads' };
    expect(sortReasons([info, warn, second]).map(r => r.rule)).toEqual(['gfx1151-fit', 'cpu-only', 'threads']);
  });
});

describe('formatProgress and formatError', () => {
  it('labels progress', () => {
    expect(formatProgress(0.5, 'loading weights')).toBe('50% loading weights');
    expect(formatProgress(null, 'starting')).toBe('starting');
    expect(formatProgress(null)).toBe('starting…');
  });

  it('turns the contract error body into one line', () => {
    expect(formatError({ error: 'ModelError', message: 'no such model: foo', hint: 'see /models' }, 'x')).toBe(
      'no such model: foo (see /models)'
    );
    expect(formatError({ error: 'X', message: 'm', hint: null }, 'x')).toBe('m');
    expect(formatError('<html>', 'fallback')).toBe('fallback');
  });
});

describe('formatGiB', () => {
  it('says GiB with two decimals, as the registry does', () => {
    expect(formatGiB(1449551462)).toBe('1.35 GiB');
    expect(formatGiB(256 * 1024 ** 2)).toBe('0.25 GiB');
    expect(formatGiB(80 * GIB)).toBe('80.00 GiB');
    expect(formatGiB(0)).toBe('0 GiB');
    expect(formatGiB(null)).toBe('–');
    expect(formatGiB(-1)).toBe('–');
  });
});

describe('formatDevices', () => {
  it('names the GPUs a server holds, short, with full labels as the title', () => {
    expect(formatDevices(boxEntry('alice', 'a').devices)).toEqual({
      text: 'GPU 0',
      title: 'GPU 0 (NVIDIA H100 80GB HBM3)'
    });
    const two = [
      { device: 'gpu:a', label: 'GPU 0 (NVIDIA H100 80GB HBM3)', kind: 'gpu', bytes: 1 },
      { device: 'gpu:b', label: 'GPU 1 (NVIDIA H100 80GB HBM3)', kind: 'gpu', bytes: 1 }
    ];
    expect(formatDevices(two).text).toBe('GPU 0, GPU 1');
  });

  it('says cpu when a server holds host RAM only, or nothing', () => {
    expect(formatDevices([{ device: 'host', label: 'host RAM', kind: 'host', bytes: 268435456 }]).text).toBe('cpu');
    expect(formatDevices([]).text).toBe('cpu');
    expect(formatDevices(undefined).text).toBe('cpu');
  });
});
