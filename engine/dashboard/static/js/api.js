// The dashboard's JSON, read with the session cookie. A lost session goes back to the login.

class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

export async function get(path, params = {}) {
  const url = new URL(`api/${path}`, document.baseURI);
  for (const [key, value] of Object.entries(params)) {
    if (value != null && value !== '') url.searchParams.set(key, value);
  }
  const response = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
  if (response.status === 401) {
    location.assign(new URL('login', document.baseURI));
    throw new ApiError('Your session ended. Log in again.', 401);
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(body.reason || `${response.status} ${response.statusText}`, response.status);
  return body;
}
