// HTTP client for /api/portal/v1: the access token lives in this module's
// memory only (never in storage); the refresh token is the HttpOnly cookie.
// On a 401 the client refreshes once through the cookie and retries once.

export const BASE = '/api/portal/v1';

let accessToken = null;
let currentUser = null;
let refreshing = null;
const sessionListeners = new Set();
const channel = 'BroadcastChannel' in self ? new BroadcastChannel('atrium-auth') : null;

export class ApiError extends Error {
	constructor(status, problem, retryAfter) {
		super(problem?.detail || problem?.title || `HTTP ${status}`);
		this.status = status;
		this.code = problem?.code || (status === 0 ? 'network' : 'http_' + status);
		this.problem = problem || null;
		this.errors = Array.isArray(problem?.errors) ? problem.errors : [];
		this.retryAfter = retryAfter;
	}
	fieldError(field) {
		return this.errors.find((e) => e.field === field) || null;
	}
}

export const user = () => currentUser;
export const signedIn = () => accessToken !== null;

// listener(event) with event 'signin' | 'signout' | 'expired' | 'user'
export function onSession(fn) {
	sessionListeners.add(fn);
	return () => sessionListeners.delete(fn);
}
function emit(ev) {
	for (const fn of sessionListeners) {
		try { fn(ev); } catch (e) { console.error(e); }
	}
}

export function setSession(s) {
	const was = accessToken !== null;
	accessToken = s.access_token;
	currentUser = s.user || currentUser;
	if (!was) emit('signin');
}

export function updateUser(u) {
	currentUser = {...currentUser, ...u};
	emit('user');
}

function forget(reason) {
	const was = accessToken !== null;
	accessToken = null;
	currentUser = null;
	if (was) emit(reason);
}

if (channel) {
	channel.onmessage = (e) => {
		if (e.data === 'signout') forget('signout');
	};
}

function retryAfterOf(res) {
	const v = res.headers.get('Retry-After');
	if (!v) return null;
	const n = Number(v);
	if (Number.isFinite(n)) return n;
	const t = Date.parse(v);
	return Number.isFinite(t) ? Math.max(0, (t - Date.now()) / 1000) : null;
}

async function parse(res) {
	const ct = res.headers.get('Content-Type') || '';
	let text = '';
	try { text = await res.text(); } catch { return null; }
	if (!ct.includes('json') || !text) return null;
	try { return JSON.parse(text); } catch { return null; }
}

async function rawFetch(method, path, {body, headers = {}, token, etag, signal} = {}) {
	const h = {Accept: 'application/json', ...headers};
	if (body !== undefined) h['Content-Type'] = 'application/json';
	if (token) h.Authorization = `Bearer ${token}`;
	if (etag) h['If-None-Match'] = etag;
	try {
		return await fetch(BASE + path, {
			method, headers: h, body: body !== undefined ? JSON.stringify(body) : undefined,
			credentials: 'same-origin', cache: 'no-store', signal,
		});
	} catch (e) {
		if (e.name === 'AbortError') throw e;
		throw new ApiError(0, {code: 'network', detail: 'Could not reach the server. Check your connection and try again.'});
	}
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// POST /auth/refresh through the cookie; one request at a time.
// Returns true with a fresh access token, false when there is no session.
export function refresh() {
	if (!refreshing) {
		refreshing = (async () => {
			for (let attempt = 0; attempt < 3; attempt++) {
				const res = await rawFetch('POST', '/auth/refresh');
				if (res.ok) {
					setSession(await parse(res));
					return true;
				}
				const p = await parse(res);
				// another tab rotated the cookie a moment ago: the jar now
				// holds the new one, try again shortly
				if (res.status === 409 && p?.code === 'refresh_conflict') {
					await sleep(300 + Math.random() * 500);
					continue;
				}
				if (res.status === 429) {
					await sleep(Math.min(5, retryAfterOf(res) || 1) * 1000);
					continue;
				}
				if (res.status === 401 || res.status === 400 || res.status === 403) {
					forget('expired');
					return false;
				}
				throw new ApiError(res.status, p, retryAfterOf(res));
			}
			forget('expired');
			return false;
		})().finally(() => { refreshing = null; });
	}
	return refreshing;
}

// request('GET', '/projects', {etag}) -> {status, data, etag}; 304 -> {status:304, notModified:true}
// Throws ApiError for 4xx/5xx and network failures.
export async function request(method, path, opts = {}) {
	const {auth = true} = opts;
	if (auth && !accessToken) {
		const ok = await refresh();
		if (!ok) throw new ApiError(401, {code: 'unauthorized', detail: 'Please sign in.'});
	}
	let res = await rawFetch(method, path, {...opts, token: auth ? accessToken : null});
	if (res.status === 401 && auth) {
		await res.text().catch(() => '');
		const ok = await refresh();
		if (!ok) throw new ApiError(401, {code: 'unauthorized', detail: 'Please sign in.'});
		res = await rawFetch(method, path, {...opts, token: accessToken});
		if (res.status === 401) {
			const p = await parse(res);
			forget('expired');
			throw new ApiError(401, p);
		}
	}
	const etag = res.headers.get('ETag');
	if (res.status === 304) {
		await res.text().catch(() => '');
		return {status: 304, notModified: true, etag: opts.etag};
	}
	const data = res.status === 204 ? null : await parse(res);
	if (!res.ok) throw new ApiError(res.status, data, retryAfterOf(res));
	return {status: res.status, data, etag, headers: res.headers};
}

export const get = (path, opts) => request('GET', path, opts);
export const post = (path, body, opts) => request('POST', path, {...opts, body});
export const patch = (path, body, opts) => request('PATCH', path, {...opts, body});
export const del = (path, opts) => request('DELETE', path, opts);

// Unauthenticated POSTs (sign in, invites, password reset).
export async function publicPost(path, body) {
	const res = await rawFetch('POST', path, {body});
	const data = res.status === 204 ? null : await parse(res);
	if (!res.ok) throw new ApiError(res.status, data, retryAfterOf(res));
	return {status: res.status, data};
}

export async function login(email, password) {
	const {data} = await publicPost('/auth/login', {email, password});
	setSession(data);
	return data;
}

// Revokes the session (the server clears the refresh cookie), then forgets
// the token here and in the other tabs.  Offline, the token still goes (it
// dies with its TTL on the server).
export async function logout() {
	const token = accessToken;
	if (token) {
		const ctrl = new AbortController();
		const timer = setTimeout(() => ctrl.abort(), 5000);
		try {
			let res = await rawFetch('POST', '/auth/logout', {token, signal: ctrl.signal});
			await res.text().catch(() => '');
			// an expired access token cannot end the session: renew it once
			// through the cookie, so that the cookie is revoked too
			if (res.status === 401 && await refresh().catch(() => false)) {
				res = await rawFetch('POST', '/auth/logout', {token: accessToken, signal: ctrl.signal});
				await res.text().catch(() => '');
			}
		} catch { /* offline or timed out */ }
		clearTimeout(timer);
	}
	forget('signout');
	if (channel) channel.postMessage('signout');
}

// Every page of a list (limit 200 per request).
export async function getAll(path, opts = {}) {
	const out = [];
	let cursor = null;
	do {
		const sep = path.includes('?') ? '&' : '?';
		const r = await get(`${path}${sep}limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, opts);
		out.push(...r.data.data);
		cursor = r.data.next_cursor;
	} while (cursor);
	return out;
}

// Poll fn() every `ms` while the page is visible (and at once when it
// becomes visible again); errors back off up to a minute.  Returns stop().
export function poll(fn, ms) {
	let timer = null, stopped = false, delay = ms, running = false;
	const schedule = (d) => {
		clearTimeout(timer);
		if (!stopped) timer = setTimeout(tick, d);
	};
	async function tick() {
		if (stopped) return;
		if (document.visibilityState !== 'visible') return; // resumed by visibilitychange
		if (running) return schedule(delay);
		running = true;
		try {
			await fn();
			delay = ms;
		} catch (e) {
			if (e?.name !== 'AbortError') delay = Math.min(60000, delay * 2);
		} finally {
			running = false;
		}
		schedule(delay);
	}
	const onVis = () => {
		if (document.visibilityState === 'visible') schedule(0);
	};
	document.addEventListener('visibilitychange', onVis);
	schedule(ms);
	return () => {
		stopped = true;
		clearTimeout(timer);
		document.removeEventListener('visibilitychange', onVis);
	};
}

// A readable sentence for an error that has no special handling.
export function describe(err) {
	if (!(err instanceof ApiError)) return 'Something went wrong. Please try again.';
	switch (err.code) {
	case 'network':
		return 'Could not reach the server. Check your connection and try again.';
	case 'unavailable':
		return `The service is temporarily unavailable. Please try again${err.retryAfter ? ` in ${Math.ceil(err.retryAfter)} seconds` : ' shortly'}.`;
	case 'rate_limited':
		return `Too many requests. Please wait${err.retryAfter ? ` ${Math.ceil(err.retryAfter)} seconds` : ' a moment'} and try again.`;
	case 'not_found':
		return 'This page does not exist, or you do not have access to it.';
	case 'unauthorized':
	case 'token_expired':
		return 'Your session has ended. Please sign in again.';
	case 'forbidden':
		return 'You are not allowed to do this.';
	case 'validation_failed':
		return err.errors.length
			? err.errors.map((e) => `${fieldName(e.field)} ${e.message}`).join('. ') + '.'
			: 'Some fields are not valid.';
	case 'internal':
		return `Something went wrong on our side. Please try again.${err.problem?.request_id ? ` (Reference: ${err.problem.request_id})` : ''}`;
	default:
		if (err.status >= 500) return 'Something went wrong on our side. Please try again.';
		return err.problem?.detail ? capital(err.problem.detail) : 'Something went wrong. Please try again.';
	}
}

const FIELD_NAMES = {
	name: 'Name', phone: 'Phone', locale: 'Language', time_zone: 'Time zone', body: 'Message',
	password: 'Password', new_password: 'New password', current_password: 'Current password',
	email: 'Email', comment: 'Comment',
};
function fieldName(f) {
	return FIELD_NAMES[f] || capital(String(f || '').replace(/_/g, ' '));
}
function capital(s) {
	return s ? s[0].toUpperCase() + s.slice(1) : s;
}
