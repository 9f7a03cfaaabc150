// Calls to the service's API: the key from session storage as a Bearer header, errors as the
// API's own message. The key never goes into a URL, a cookie or local storage.

const KEY_NAME = "homelab-ai.api-key";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let unauthorized = () => {};

export function onUnauthorized(handler) {
  unauthorized = handler;
}

export function storedKey() {
  return sessionStorage.getItem(KEY_NAME);
}

export function storeKey(key) {
  sessionStorage.setItem(KEY_NAME, key);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_NAME);
}

/** fetch `path` ("/api/..."); `json` or `form` is the body. Resolves to the parsed JSON.
 * The path is made relative to the page (/admin), so the page also works behind a reverse
 * proxy that serves the service under a path prefix. */
export async function api(path, { method = "GET", json, form } = {}) {
  path = path.replace(/^\/+/, "");
  const headers = { Accept: "application/json" };
  const key = storedKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = form;
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body, cache: "no-store", credentials: "omit" });
  } catch {
    throw new ApiError(0, "UNREACHABLE", "the service cannot be reached");
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = data && typeof data === "object" ? data.error : null;
    const message =
      error && typeof error.message === "string"
        ? error.message
        : `HTTP ${response.status} ${response.statusText}`.trim();
    const failure = new ApiError(response.status, error?.code ?? `HTTP_${response.status}`, message);
    if (response.status === 401) unauthorized(failure);
    throw failure;
  }
  return data;
}

/** POST `json` to a route that answers NDJSON (Ollama's streams); `onChunk` gets each line's
 * object as it arrives. Errors as `api`'s: the envelope's message, or Ollama's `error`. */
export async function apiStream(path, json, signal, onChunk) {
  const headers = { Accept: "application/x-ndjson", "Content-Type": "application/json" };
  const key = storedKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  const response = await fetch(path.replace(/^\/+/, ""), {
    method: "POST",
    headers,
    body: JSON.stringify(json),
    cache: "no-store",
    credentials: "omit",
    signal,
  });
  if (!response.ok) {
    let error = null;
    try {
      error = (await response.json()).error;
    } catch {
      error = null;
    }
    const message = typeof error === "string" ? error : error?.message;
    const failure = new ApiError(
      response.status,
      error?.code ?? `HTTP_${response.status}`,
      message || `HTTP ${response.status} ${response.statusText}`.trim(),
    );
    if (response.status === 401) unauthorized(failure);
    throw failure;
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    pending += value;
    const lines = pending.split("\n");
    pending = lines.pop();
    for (const line of lines) if (line.trim()) onChunk(JSON.parse(line));
  }
  if (pending.trim()) onChunk(JSON.parse(pending));
}
