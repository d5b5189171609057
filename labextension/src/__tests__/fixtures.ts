import { IGPU, IServer } from '../types';

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
