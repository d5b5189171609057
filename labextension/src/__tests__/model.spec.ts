import { describe, expect, it } from 'vitest';
import {
  gpuGroups,
  gpuKey,
  initialState,
  IState,
  isActive,
  progressOf,
  reasonsOf,
  reduce,
  serverList
} from '../model';
import { XgenAction } from '../types';
import { boxEntry, gpu, RECORDED_H100, server, twoNodeReport } from './fixtures';

const run = (actions: XgenAction[], from: IState = initialState) => actions.reduce(reduce, from);

describe('reduce', () => {
  it('hello replaces servers and hardware, and marks the connection up', () => {
    const s = run([
      { kind: 'upsert', data: server('stale', 'ready') },
      {
        kind: 'hello',
        servers: [server('b', 'ready'), server('a', 'loading'), server('old', 'stopped')],
        hardware: { gpus: [gpu(0, 10)], cpu: { cores_logical: 8 } }
      }
    ]);
    expect(Object.keys(s.servers).sort()).toEqual(['a', 'b']);
    expect(s.gpus).toHaveLength(1);
    expect(s.connected).toBe(true);
    expect(serverList(s).map(x => x.name)).toEqual(['a', 'b']);
  });

  it('does not mutate the previous state', () => {
    const before = run([{ kind: 'upsert', data: server('a', 'starting') }]);
    const frozen = JSON.stringify(before);
    run([{ kind: 'state', server: 'a', data: server('a', 'ready') }], before);
    expect(JSON.stringify(before)).toBe(frozen);
    expect(initialState.servers).toEqual({});
  });

  it('follows a server through its states and drops it once stopped', () => {
    const s1 = run([
      { kind: 'upsert', data: server('m', 'starting') },
      { kind: 'state', server: 'm', data: server('m', 'loading') }
    ]);
    expect(s1.servers.m.state).toBe('loading');
    const s2 = run([{ kind: 'state', server: 'm', data: server('m', 'ready') }], s1);
    expect(s2.servers.m.endpoint).toBe('http://127.0.0.1:8888/xgen/v1');
    const s3 = run(
      [
        { kind: 'state', server: 'm', data: server('m', 'stopping') },
        { kind: 'state', server: 'm', data: server('m', 'stopped') }
      ],
      s2
    );
    expect(s3.servers).toEqual({});
  });

  it('drops a snapshot older than the one shown (a load reply after the ready event)', () => {
    const ready = server('m', 'ready', { revision: 3, created_at: 10 });
    const late = server('m', 'loading', { revision: 2, created_at: 10 });
    const s1 = run([{ kind: 'state', server: 'm', data: ready }, { kind: 'upsert', data: late }]);
    expect(s1.servers.m.state).toBe('ready');
    // a new server of the same name (reloaded) starts its revisions again and is taken
    const again = server('m', 'planned', { revision: 0, created_at: 11 });
    expect(run([{ kind: 'upsert', data: again }], s1).servers.m.state).toBe('planned');
  });

  it('keeps failed servers so the error stays visible', () => {
    const s = run([
      {
        kind: 'state',
        server: 'm',
        data: server('m', 'failed', { error: { id: 'out-of-memory', summary: 'the engine ran out of memory' } })
      }
    ]);
    expect(s.servers.m.error?.id).toBe('out-of-memory');
    expect(isActive(s.servers.m.state)).toBe(false);
  });

  it('tracks progress while loading and forgets it once ready', () => {
    const s1 = run([
      { kind: 'upsert', data: server('m', 'loading') },
      { kind: 'progress', server: 'm', data: { progress: 0.4, message: 'loading weights' } }
    ]);
    expect(progressOf(s1, 'm')).toEqual({ progress: 0.4, message: 'loading weights' });
    const s2 = run([{ kind: 'state', server: 'm', data: server('m', 'ready') }], s1);
    expect(s2.progress).toEqual({});
    expect(progressOf(s2, 'm')).toBeNull();
    // A late progress message after ready changes nothing.
    const s3 = run([{ kind: 'progress', server: 'm', data: { progress: 0.9, message: 'late' } }], s2);
    expect(s3).toBe(s2);
  });

  it('falls back to the progress the server row carries', () => {
    const s = run([{ kind: 'upsert', data: server('m', 'starting', { progress: null, progress_message: 'spawned' }) }]);
    expect(progressOf(s, 'm')).toEqual({ progress: null, message: 'spawned' });
  });

  it('replaces GPUs on every sample', () => {
    const s = run([
      { kind: 'gpus', data: { gpus: [gpu(0, 1), gpu(1, 2)], time: 1 } },
      { kind: 'gpus', data: { gpus: [gpu(0, 5)], time: 2 } }
    ]);
    expect(s.gpus.map(g => g.memory_used)).toEqual([gpu(0, 5).memory_used]);
    expect(s.gpusTime).toBe(2);
  });

  it('records connection loss with its reason', () => {
    const s = run([
      { kind: 'hello', servers: [], hardware: null },
      { kind: 'connection', connected: false, error: 'code 1006' }
    ]);
    expect(s.connected).toBe(false);
    expect(s.error).toBe('code 1006');
  });

  it('ignores unknown message kinds', () => {
    const s = run([{ kind: 'mystery' } as unknown as XgenAction]);
    expect(s).toBe(initialState);
  });
});

describe('reasonsOf', () => {
  it('prefers top-level reasons and falls back to the plan', () => {
    expect(reasonsOf(server('a', 'ready'))).toHaveLength(2);
    const planOnly = server('b', 'ready', {
      reasons: undefined,
      plan: { reasons: [{ rule: 'r', effect: 'e', why: 'w', level: 'info' }] }
    });
    expect(reasonsOf(planOnly).map(r => r.rule)).toEqual(['r']);
    expect(reasonsOf(server('c', 'ready', { reasons: undefined }))).toEqual([]);
  });
});

describe('the box listing', () => {
  it('is null until the first answer, then replaced by each answer', () => {
    expect(initialState.box).toBeNull();
    const s1 = run([{ kind: 'box', servers: [boxEntry('alice', 'alice-3'), boxEntry('bob', 'bob-7')] }]);
    expect(s1.box!.map(e => `${e.owner}/${e.name}`)).toEqual(['alice/alice-3', 'bob/bob-7']);
    const s2 = run([{ kind: 'box', servers: [boxEntry('bob', 'bob-7')] }], s1);
    expect(s2.box!.map(e => e.name)).toEqual(['bob-7']);
    expect(s1.box).toHaveLength(2);
  });

  it('keeps the last listing when a refresh fails, and clears the error on the next answer', () => {
    const s1 = run([
      { kind: 'box', servers: [boxEntry('alice', 'alice-3')] },
      { kind: 'box-error', error: '503 Service Unavailable' }
    ]);
    expect(s1.box).toHaveLength(1);
    expect(s1.boxError).toBe('503 Service Unavailable');
    const s2 = run([{ kind: 'box', servers: [] }], s1);
    expect(s2.boxError).toBeNull();
    expect(s2.box).toEqual([]);
  });

  it('is left alone by server events (it is refetched, not derived)', () => {
    const s1 = run([{ kind: 'box', servers: [boxEntry('alice', 'alice-3')] }]);
    const s2 = run([{ kind: 'state', server: 'm', data: server('m', 'ready') }], s1);
    expect(s2.box).toBe(s1.box);
  });
});

describe('gpuGroups', () => {
  it('is one group without a node on one box', () => {
    const gpus = [gpu(0, 1), gpu(1, 2)];
    expect(gpuGroups(gpus)).toEqual([{ node: null, gpus }]);
    expect(gpuGroups([{ ...RECORDED_H100, node: undefined }])).toEqual([
      { node: null, gpus: [{ ...RECORDED_H100, node: undefined }] }
    ]);
    expect(gpuGroups([])).toEqual([]);
  });

  it('groups a two-node cluster report by node, in the order nodes appear', () => {
    const s = run([{ kind: 'hello', servers: [], hardware: twoNodeReport() }]);
    const groups = gpuGroups(s.gpus);
    expect(groups.map(g => g.node)).toEqual(['127.0.0.2', '127.0.0.3']);
    expect(groups.map(g => g.gpus.map(x => x.index))).toEqual([[0], [0]]);
    // Index 0 twice: the key must tell them apart.
    expect(new Set(s.gpus.map(gpuKey)).size).toBe(2);
    expect(gpuKey(s.gpus[0])).not.toBe(gpuKey(s.gpus[1]));
  });

  it('keeps nodes together even when samples interleave them', () => {
    const [a, b] = twoNodeReport().gpus;
    const gpus = [a, b, { ...a, index: 1 }, { ...b, index: 1 }];
    const groups = gpuGroups(gpus);
    expect(groups.map(g => [g.node, g.gpus.map(x => x.index)])).toEqual([
      ['127.0.0.2', [0, 1]],
      ['127.0.0.3', [0, 1]]
    ]);
  });
});
