import { IBoxServer, ICatalogEntry, IGPU, IHardwareReport, IQueue, IServer } from '../types';

/** A server as ManagedServer.to_dict() sends it (trimmed to what the UI reads). */
export function server(name: string, state: IServer['state'], extra: Partial<IServer> = {}): IServer {
  return {
    name,
    model: 'default',
    model_path: '/models/gemma-3-270m-it-Q4_K_M.gguf',
    server_type: 'llm',
    state,
    backend: 'llama-server-cpu',
    reasons: [
      { rule: 'cpu-only', effect: 'n_gpu_layers=0', why: 'no GPU was detected', level: 'info' },
      { rule: 'ctx-cap', effect: 'n_ctx=8192', why: 'host RAM limits the KV cache', level: 'warning' }
    ],
    endpoint: state === 'ready' ? 'http://127.0.0.1:8888/xgen/v1' : null,
    error: null,
    progress: null,
    progress_message: null,
    ...extra
  };
}

export const GIB = 1024 ** 3;

export function gpu(index: number, usedGiB: number, totalGiB = 80): IGPU {
  return {
    index,
    name: 'NVIDIA H100 80GB HBM3',
    vendor: 'nvidia',
    memory_total: totalGiB * GIB,
    memory_free: (totalGiB - usedGiB) * GIB,
    memory_used: usedGiB * GIB,
    utilization: 37,
    arch: 'sm_90'
  };
}

/**
 * The lent NVIDIA H100 80GB HBM3 as NVML reported it (tests/fixtures/devices/nvidia-h100.nvml.json,
 * recorded 2026-11-27), shaped as GPUInfo.to_dict() sends it.
 */
export const RECORDED_H100: IGPU = Object.freeze({
  index: 0,
  name: 'NVIDIA H100 80GB HBM3',
  vendor: 'nvidia',
  memory_total: 85520809984,
  memory_free: 85017493504,
  memory_used: 503316480,
  arch: 'sm_90',
  compute_capability: '9.0',
  family: 'hopper',
  integrated: false,
  pci_bus_id: '00000000:00:06.0',
  uuid: 'GPU-a2e344e3-01af-ef82-4e20-0736cfd3aa28',
  mig: false,
  utilization: 0,
  source: 'nvml',
  memory_shared: null,
  node: null
});

/**
 * A two-node Ray cluster of such machines as ClusterManager.hardware() reports it
 * (core/cluster/manager.py): each node's GPUs tagged with its address, so index 0
 * appears twice; one detector row per node. GPU values are the recording's; the CPU
 * row (the first node's) is not part of the NVML recording.
 */
export function twoNodeReport(): IHardwareReport {
  const nodes = ['127.0.0.2', '127.0.0.3'];
  const gpus = nodes.map(node => ({ ...RECORDED_H100, node }));
  return {
    method: 'cluster',
    gpus,
    cpu: { cores_physical: 16, cores_logical: 16, memory_total: 128 * GIB, memory_available: 120 * GIB, model_name: '' },
    vulkan_devices: [],
    detectors: nodes.map((node, i) => ({
      name: `node ${node}`,
      available: true,
      reason: 'vm: nvml, 1 GPU(s)',
      gpus: [gpus[i]],
      elapsed_s: 0.21
    })),
    detected_at: 1795777763.0
  };
}

/** One entry of `servers?scope=box` as BoxRegistry.listing() builds it (core/box/registry.py). */
export function boxEntry(owner: string, name: string, extra: Partial<IBoxServer> = {}): IBoxServer {
  return {
    owner,
    name,
    host: 'vm',
    model: 'default',
    backend: 'llama-server-cuda',
    state: 'ready',
    created_at: 1795777800.5,
    updated_at: 1795777812.25,
    devices: [
      { device: `gpu:${RECORDED_H100.uuid}`, label: 'GPU 0 (NVIDIA H100 80GB HBM3)', kind: 'gpu', bytes: 1449551462 },
      { device: 'host', label: 'host RAM', kind: 'host', bytes: 268435456 }
    ],
    gpu_bytes: 1449551462,
    host_bytes: 268435456,
    shared_with: [],
    mine: false,
    ...extra
  };
}

/**
 * A `queue` event as Scheduler._publish sends it (core/scheduler/router.py): FairQueue.snapshot()
 * of a 1-slot server with alice's two requests and bob's one waiting, round-robin (alice first).
 */
export function queueEvent(serverName: string, extra: Partial<IQueue> = {}): { kind: 'queue'; server: string; data: IQueue } {
  return {
    kind: 'queue',
    server: serverName,
    data: { slots: 1, in_flight: 1, queued: 3, limit: 64, positions: { alice: [1, 3], bob: [2] }, ...extra }
  };
}

/** `GET xgen/v1/models` as ModelsProxyHandler answers (server/proxy.py): one ready server, then catalog names not loaded. */
export function modelsAnswer(): { object: 'list'; data: ICatalogEntry[] } {
  return {
    object: 'list',
    data: [
      { id: 'default', object: 'model', created: 0, owned_by: 'xgen', loaded: true },
      { id: 'qwen3-0.6b-q8_0', object: 'model', created: 0, owned_by: 'xgen', loaded: false, catalog: 'gguf', size: 639446688 },
      { id: 'small-ctx', object: 'model', created: 0, owned_by: 'xgen', loaded: false, catalog: 'preset', size: 253114368 }
    ]
  };
}
