/**
 * REST and WebSocket access to the xgen server extension, always relative to
 * the Jupyter server's base_url (works under JupyterHub and custom base_urls).
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { formatError } from './format';

export const API_NAMESPACE = 'xgen/api';

/** `<baseUrl>/xgen/api/<parts...>`, each part URL-encoded, plus an optional query. */
export function apiUrl(
  baseUrl: string,
  parts: string[],
  query?: { [key: string]: string | number | undefined }
): string {
  const path = URLExt.join(baseUrl, API_NAMESPACE, ...parts.map(p => encodeURIComponent(p)));
  return path + queryString(query);
}

export function queryString(query?: { [key: string]: string | number | undefined }): string {
  if (!query) {
    return '';
  }
  const entries = Object.keys(query)
    .filter(k => query[k] !== undefined && query[k] !== '')
    .map(k => `${encodeURIComponent(k)}=${encodeURIComponent(String(query[k]))}`);
  return entries.length ? `?${entries.join('&')}` : '';
}

/**
 * The websocket URL for an API path: settings.wsUrl already carries the
 * base_url; the token goes in the query since browsers cannot set headers on
 * a websocket (an empty token, e.g. cookie auth, is left out).
 */
export function wsApiUrl(
  wsUrl: string,
  token: string,
  parts: string[],
  query?: { [key: string]: string | number | undefined }
): string {
  return apiUrl(wsUrl, parts, { ...query, token: token || undefined });
}

/** The OpenAI-compatible proxy's base URL (what `openai.OpenAI(base_url=...)` takes). */
export function proxyUrl(baseUrl: string): string {
  return URLExt.join(baseUrl, 'xgen/v1');
}

/** An error answer of the API, with the contract's fields. */
export class XgenAPIError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    message: string
  ) {
    super(message);
    this.name = 'XgenAPIError';
  }
}

/** Call `xgen/api/<endpoint>` and return the parsed JSON answer. */
export async function requestAPI<T>(
  endPoint: string[],
  init: RequestInit = {},
  query?: { [key: string]: string | number | undefined },
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  return requestURL<T>(apiUrl(settings.baseUrl, endPoint, query), init, settings);
}

/** Call the OpenAI-compatible proxy, `xgen/v1/<parts>` (e.g. ['models']), and return its JSON. */
export async function requestProxy<T>(
  parts: string[],
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const url = URLExt.join(proxyUrl(settings.baseUrl), ...parts.map(p => encodeURIComponent(p)));
  return requestURL<T>(url, {}, settings);
}

async function requestURL<T>(url: string, init: RequestInit, settings: ServerConnection.ISettings): Promise<T> {
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  let data: unknown = text;
  if (text.length > 0) {
    try {
      data = JSON.parse(text);
    } catch {
      // Not JSON (e.g. an HTML 404 page when the server extension is missing).
    }
  }
  if (!response.ok) {
    const fallback =
      response.status === 404 && typeof data === 'string'
        ? `xgen API not found at ${url}: is the xgen server extension enabled?`
        : `${response.status} ${response.statusText}`;
    throw new XgenAPIError(response.status, data, formatError(data, fallback));
  }
  return data as T;
}

/** The websocket URL for `xgen/api/<parts>` with the current connection settings. */
export function socketUrl(
  parts: string[],
  query?: { [key: string]: string | number | undefined },
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): string {
  return wsApiUrl(settings.wsUrl, settings.token, parts, query);
}
