import { describe, expect, it } from 'vitest';
import { ServerConnection } from '@jupyterlab/services';
import { apiUrl, proxyUrl, queryString, requestAPI, wsApiUrl, XgenAPIError } from '../api';

describe('apiUrl', () => {
  it('joins the API path under the root base_url', () => {
    expect(apiUrl('http://127.0.0.1:8888/', ['servers'])).toBe('http://127.0.0.1:8888/xgen/api/servers');
  });

  it('keeps a non-root base_url (JupyterHub style)', () => {
    expect(apiUrl('https://hub.example.org/user/alice/', ['servers', 'm1', 'logs'])).toBe(
      'https://hub.example.org/user/alice/xgen/api/servers/m1/logs'
    );
    expect(apiUrl('/user/alice/', ['models'])).toBe('/user/alice/xgen/api/models');
  });

  it('encodes server names so they stay one path segment', () => {
    expect(apiUrl('/', ['servers', 'my model/v2'])).toBe('/xgen/api/servers/my%20model%2Fv2');
  });

  it('adds a query, skipping empty values', () => {
    expect(apiUrl('/', ['hardware'], { refresh: 1, x: undefined, y: '' })).toBe('/xgen/api/hardware?refresh=1');
    expect(queryString()).toBe('');
  });
});

describe('wsApiUrl', () => {
  it('builds websocket URLs from wsUrl with the token', () => {
    expect(wsApiUrl('ws://127.0.0.1:8888/base/', 'abc', ['events'], { interval: 2 })).toBe(
      'ws://127.0.0.1:8888/base/xgen/api/events?interval=2&token=abc'
    );
  });

  it('leaves an empty token out (cookie auth)', () => {
    expect(wsApiUrl('wss://h/user/a/', '', ['servers', 'm', 'logs'], { tail: 100 })).toBe(
      'wss://h/user/a/xgen/api/servers/m/logs?tail=100'
    );
  });
});

describe('requestAPI', () => {
  function settingsAnswering(status: number, body: string, seen: string[] = []) {
    const fetchStub = async (input: RequestInfo | URL) => {
      const req = input as Request;
      seen.push(`${req.url} ${req.headers.get('Authorization')}`);
      return new Response(body, { status, headers: { 'Content-Type': 'application/json' } });
    };
    return ServerConnection.makeSettings({
      baseUrl: 'http://127.0.0.1:9999/user/alice/',
      wsUrl: 'ws://127.0.0.1:9999/user/alice/',
      token: 't0k',
      appendToken: false,
      fetch: fetchStub as typeof fetch
    });
  }

  it('requests under the base_url and parses JSON', async () => {
    const seen: string[] = [];
    const s = settingsAnswering(200, '{"servers": []}', seen);
    await expect(requestAPI(['servers'], {}, undefined, s)).resolves.toEqual({ servers: [] });
    // GETs carry a cache-busting query from ServerConnection; the token goes in the header.
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatch(/^http:\/\/127\.0\.0\.1:9999\/user\/alice\/xgen\/api\/servers(\?\d+)? token t0k$/);
  });

  it('turns the contract error body into an XgenAPIError', async () => {
    const s = settingsAnswering(409, '{"error": "BackendUnavailable", "message": "vllm is not installed", "hint": "pip install vllm"}');
    const err = await requestAPI(['servers'], { method: 'POST', body: '{}' }, undefined, s).catch(e => e);
    expect(err).toBeInstanceOf(XgenAPIError);
    expect(err.status).toBe(409);
    expect(err.message).toBe('vllm is not installed (pip install vllm)');
  });

  it('explains a bare 404 as a missing server extension', async () => {
    const s = settingsAnswering(404, '<html>Not Found</html>');
    const err = await requestAPI(['models'], {}, undefined, s).catch(e => e);
    expect(err.message).toMatch(/is the xgen server extension enabled/);
  });
});

describe('proxyUrl', () => {
  it('points at xgen/v1 under the base_url', () => {
    expect(proxyUrl('http://127.0.0.1:8888/user/alice/')).toBe('http://127.0.0.1:8888/user/alice/xgen/v1');
  });
});
