// The portal single-page app: boot (branding + session), routing, layout.

import * as api from './api.js';
import {loadBranding, setTitle, branding} from './brand.js';
import {h, clear, announce, errorBlock, setFormatPrefs} from './dom.js';
import * as auth from './pages/auth.js';
import * as dashboard from './pages/dashboard.js';
import * as project from './pages/project.js';
import * as thread from './pages/thread.js';
import * as account from './pages/account.js';
import * as unsubscribe from './pages/unsubscribe.js';

const UUID = '([0-9a-fA-F-]{36})';
const routes = [
	{re: /^\/signin\/?$/, page: auth.signin, public: true},
	{re: /^\/invite\/?$/, page: auth.invite, public: true, noRefresh: true},
	{re: /^\/forgot\/?$/, page: auth.forgot, public: true},
	{re: /^\/reset\/?$/, page: auth.reset, public: true, noRefresh: true},
	{re: /^\/unsubscribe\/?$/, page: unsubscribe.render, public: true, noRefresh: true},
	{re: /^\/$/, page: dashboard.render},
	{re: /^\/projects\/?$/, redirect: '/'},
	{re: new RegExp(`^/projects/${UUID}/?$`), page: project.render, params: ['id']},
	{re: new RegExp(`^/projects/${UUID}/messages/?$`), page: thread.render, params: ['id']},
	{re: /^\/account\/?$/, page: account.render},
];

const main = document.getElementById('main');
let cleanup = null;
let controller = null;
let firstRender = true;
let flash = null; // message for the sign-in page
let meLoaded = null;

export function setFlash(kind, text) {
	flash = {kind, text};
}
export function takeFlash() {
	const f = flash;
	flash = null;
	return f;
}

export function navigate(path, {replace = false} = {}) {
	if (replace) history.replaceState(null, '', path);
	else history.pushState(null, '', path);
	route();
}

export function currentPath() {
	return location.pathname + location.search;
}

// /me gives the locale and time zone used to format dates.
export function loadMe(force = false) {
	if (!meLoaded || force) {
		meLoaded = api.get('/me').then((r) => {
			setFormatPrefs(r.data.locale, r.data.time_zone);
			api.updateUser({name: r.data.name, email: r.data.email});
			return r.data;
		}).catch((e) => {
			meLoaded = null;
			throw e;
		});
	}
	return meLoaded;
}

function renderHeader() {
	const box = document.getElementById('header-user');
	clear(box);
	if (!api.signedIn()) {
		box.hidden = true;
		return;
	}
	const path = location.pathname;
	// aria-current: "page" on the page itself, "true" on its sub-pages
	const link = (href, text, current) => h('a', {href, class: 'nav-link', 'aria-current': current || null}, text);
	box.append(
		h('nav', {'aria-label': 'Main', class: 'main-nav'},
			link('/', 'Projects', path === '/' ? 'page' : path.startsWith('/projects') ? 'true' : null),
			link('/account', 'Account', path.startsWith('/account') ? 'page' : null)),
		h('button', {type: 'button', class: 'btn btn-header', onclick: signOut}, 'Sign out'));
	box.hidden = false;
}

async function signOut(e) {
	const btn = e?.currentTarget;
	if (btn) btn.disabled = true;
	await api.logout();
	// the 'signout' session event takes the user to the sign-in page
}

api.onSession((ev) => {
	if (ev === 'signin') {
		renderHeader();
		return;
	}
	if (ev === 'user') return;
	meLoaded = null;
	renderHeader();
	const r = match(location.pathname);
	if (ev === 'signout') {
		setFlash('ok', 'You have been signed out.');
		navigate('/signin', {replace: false});
	} else if (ev === 'expired' && r && !r.public) {
		setFlash('info', 'Your session has ended. Please sign in again.');
		navigate(`/signin?next=${encodeURIComponent(currentPath())}`, {replace: true});
	}
});

function match(path) {
	for (const r of routes) {
		const m = r.re.exec(path);
		if (m) {
			const params = {};
			(r.params || []).forEach((p, i) => { params[p] = m[i + 1].toLowerCase(); });
			return {...r, params};
		}
	}
	return null;
}

function notFound(ctx) {
	ctx.setTitle('Page not found');
	ctx.main.append(
		h('h1', {tabindex: '-1'}, 'Page not found'),
		h('p', null, 'There is nothing at this address.'),
		h('p', null, h('a', {href: '/'}, 'Go to your projects')));
}

async function route() {
	const path = location.pathname;
	const r = match(path);
	if (r?.redirect) return navigate(r.redirect, {replace: true});

	if (cleanup) {
		try { cleanup(); } catch (e) { console.error(e); }
		cleanup = null;
	}
	if (controller) controller.abort();
	controller = new AbortController();
	const signal = controller.signal;

	if (r && !r.public && !api.signedIn()) {
		let ok = false;
		try {
			ok = await api.refresh();
		} catch (e) {
			if (signal.aborted) return;
			clear(main);
			main.append(h('h1', {tabindex: '-1'}, 'Cannot load the portal'), errorBlock(api.describe(e), () => route()));
			return;
		}
		if (signal.aborted) return;
		if (!ok) return navigate(`/signin${path === '/' ? '' : `?next=${encodeURIComponent(currentPath())}`}`, {replace: true});
	}
	if (r && !r.public) {
		try {
			await loadMe();
		} catch (e) {
			if (signal.aborted) return;
			if (!api.signedIn()) return; // expired: the session listener navigates
			// dates fall back to the browser's locale and zone
		}
		if (signal.aborted) return;
	}
	renderHeader();
	clear(main);
	main.classList.toggle('main-narrow', !!r?.public);
	const ctx = {
		main, params: r?.params || {}, query: new URLSearchParams(location.search), signal,
		navigate, setTitle, branding: branding(),
	};
	try {
		const ret = (r ? r.page : notFound)(ctx);
		cleanup = typeof ret === 'function' ? ret : null;
	} catch (e) {
		console.error(e);
		main.append(errorBlock('Something went wrong while showing this page.', () => route()));
	}
	if (!firstRender) {
		window.scrollTo(0, 0);
		const h1 = main.querySelector('h1');
		if (h1) {
			if (!h1.hasAttribute('tabindex')) h1.setAttribute('tabindex', '-1');
			h1.focus({preventScroll: true});
		}
	}
	firstRender = false;
}

// Same-origin links are handled by the router.
document.addEventListener('click', (e) => {
	if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
	const a = e.target.closest('a[href]');
	if (!a || a.target || a.hasAttribute('download') || a.dataset.external !== undefined) return;
	const url = new URL(a.href, location.href);
	if (url.origin !== location.origin || url.pathname.startsWith('/api/')) return;
	if (url.pathname === location.pathname && url.search === location.search && url.hash) return;
	e.preventDefault();
	navigate(url.pathname + url.search);
});

// The skip link moves focus without touching the URL fragment (which may
// hold an invite or reset token).
document.getElementById('skip-link').addEventListener('click', (e) => {
	e.preventDefault();
	main.focus();
	main.scrollIntoView();
});

window.addEventListener('popstate', () => route());

async function boot() {
	const r = match(location.pathname);
	const brandingP = loadBranding();
	// a session through the refresh cookie, in parallel with the branding
	const refreshP = r?.noRefresh ? Promise.resolve(false) : api.refresh().catch(() => false);
	try {
		await brandingP;
	} catch (e) {
		await refreshP;
		clear(main);
		document.getElementById('header-user').hidden = true;
		if (e.code === 'tenant_not_found') {
			setTitle('Portal not found');
			main.append(h('h1', {tabindex: '-1'}, 'Portal not found'),
				h('p', null, 'No client portal is configured at this address. Check the link you were given.'));
		} else {
			setTitle('Cannot load the portal');
			main.append(h('h1', {tabindex: '-1'}, 'Cannot load the portal'),
				errorBlock(e.code === 'network'
					? 'Could not reach the server. Check your connection and try again.'
					: 'The portal is temporarily unavailable. Please try again in a moment.', () => location.reload()));
		}
		return;
	}
	await refreshP;
	await route();
	announce('');
}

boot();
