// Message thread: newest at the bottom, "Load earlier messages" with the
// list cursor, Enter sends (Shift+Enter: new line), attachments by picker or
// drag and drop with a progress bar per file, read markers, ETag polling.

import * as api from '../api.js';
import {h, nextId, loading, errorBlock, messageArea, progressBar, fmtBytes, fmtWhen, fmtTime, fmtDay, dayKey,
	focusKey, restoreFocus, announce, plural} from '../dom.js';
import {fileList, upload} from '../files.js';

const POLL_MS = 4000;
const PAGE = 50;

export function render(ctx) {
	const id = ctx.params.id;
	ctx.setTitle('Messages');
	const me = api.user();
	const crumbCurrent = h('a', {href: `/projects/${id}`}, 'Project');
	const crumbs = h('nav', {'aria-label': 'Breadcrumb', class: 'crumbs'},
		h('ol', null, h('li', null, h('a', {href: '/'}, 'Projects')), h('li', null, crumbCurrent),
			h('li', {'aria-current': 'page'}, 'Messages')));
	const subtitle = h('p', {class: 'lead muted'});
	const pageMsgs = messageArea('page-messages');
	const body = h('div', {class: 'thread-page'}, loading('Loading messages…'));
	ctx.main.append(crumbs, h('div', {class: 'page-head'}, h('h1', null, 'Messages'), subtitle), pageMsgs, body);

	let messages = [];      // oldest first
	const byId = new Map();
	let olderCursor = null, etag = null, stop = null, lastRead = null, loadingOlder = false, projectName = '';

	// ---- the list ---------------------------------------------------------------

	const olderBox = h('div', {class: 'older'});
	const listEl = h('ol', {class: 'thread', role: 'list', 'aria-label': 'Message history'});
	const emptyEl = h('p', {class: 'muted thread-empty'}, 'No messages yet. Start the conversation below.');

	function messageItem(m) {
		const mine = m.author?.kind === 'client' && me && m.author.id === me.id;
		const who = mine ? 'You' : (m.author?.name || 'Unknown');
		const hid = `m-${m.id}`;
		return h('li', {class: `message${mine ? ' mine' : ''}${m.author?.kind === 'team' ? ' team' : ''}`, dataset: {messageId: m.id}},
			h('article', {'aria-labelledby': hid},
				h('header', {class: 'message-head', id: hid},
					h('span', {class: 'author'}, who), h('span', {class: 'sr-only'}, ', '),
					h('time', {datetime: m.created_at, class: 'muted small', title: fmtWhen(m.created_at)}, fmtTime(m.created_at))),
				m.body ? h('p', {class: 'message-body'}, m.body) : null,
				fileList(m.attachments, (t) => pageMsgs.error(t))));
	}

	function renderList() {
		const key = focusKey();
		const items = [];
		let day = null;
		for (const m of messages) {
			const k = dayKey(m.created_at);
			if (k !== day) {
				day = k;
				items.push(h('li', {class: 'day-sep'}, h('span', null, fmtDay(k))));
			}
			items.push(messageItem(m));
		}
		listEl.replaceChildren(...items);
		emptyEl.hidden = messages.length > 0;
		olderBox.replaceChildren(...(olderCursor ? [h('button', {type: 'button', class: 'btn btn-secondary', dataset: {focusKey: 'older'},
			onclick: loadOlder, 'aria-disabled': loadingOlder ? 'true' : null}, loadingOlder ? 'Loading earlier messages…' : 'Load earlier messages')] : []));
		restoreFocus(ctx.main, key);
	}

	const nearBottom = () => window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 160;
	const toBottom = () => window.scrollTo(0, document.documentElement.scrollHeight);

	async function loadOlder() {
		if (loadingOlder || !olderCursor) return;
		loadingOlder = true;
		renderList();
		try {
			const r = await api.get(`/projects/${id}/messages?limit=${PAGE}&cursor=${encodeURIComponent(olderCursor)}`, {signal: ctx.signal});
			const older = r.data.data.filter((m) => !byId.has(m.id)).reverse();
			for (const m of older) byId.set(m.id, m);
			olderCursor = r.data.next_cursor;
			const before = document.documentElement.scrollHeight;
			messages = older.concat(messages);
			loadingOlder = false;
			renderList();
			window.scrollBy(0, document.documentElement.scrollHeight - before);
			const btn = olderBox.querySelector('button');
			if (btn) btn.focus({preventScroll: true});
			else listEl.querySelector('.message')?.setAttribute('tabindex', '-1');
			if (!btn) listEl.querySelector('.message')?.focus({preventScroll: true});
			announce(older.length ? `Loaded ${plural(older.length, 'earlier message', 'earlier messages')}.` : 'No earlier messages.');
		} catch (err) {
			loadingOlder = false;
			renderList();
			if (err.name !== 'AbortError') pageMsgs.error(`Earlier messages could not be loaded. ${api.describe(err)}`);
		}
	}

	async function markRead() {
		const newest = messages[messages.length - 1];
		if (!newest || newest.id === lastRead || document.visibilityState !== 'visible') return;
		const mid = newest.id;
		try {
			await api.post(`/projects/${id}/messages/read`, {last_read_message_id: mid});
			lastRead = mid;
		} catch { /* a deleted message: the next poll moves on */ }
	}

	// Merge the newest page (newest first) into the list.
	async function merge(page, nextCursor) {
		const inPage = new Set(page.map((m) => m.id));
		const known = page.filter((m) => byId.has(m.id));
		let changed = false;
		if (known.length) {
			const anchor = known[known.length - 1].id;
			const at = messages.findIndex((m) => m.id === anchor);
			const keep = messages.slice(0, at + 1).concat(messages.slice(at + 1).filter((m) => inPage.has(m.id)));
			if (keep.length !== messages.length) {
				for (const m of messages) if (!inPage.has(m.id) && !keep.includes(m)) byId.delete(m.id);
				messages = keep;
				changed = true;
			}
		}
		let fresh = page.filter((m) => !byId.has(m.id)).reverse();
		if (!known.length && nextCursor && messages.length) {
			// more than a page arrived since the last look: catch up from the newest known one
			const newest = messages[messages.length - 1].id;
			const all = [];
			let cursor = null;
			do {
				const r = await api.get(`/projects/${id}/messages?after=${newest}&limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, {signal: ctx.signal});
				all.push(...r.data.data);
				cursor = r.data.next_cursor;
			} while (cursor);
			fresh = all.filter((m) => !byId.has(m.id)).reverse();
		}
		// an edited (re-sent) copy of a known message replaces it
		for (const m of page) {
			const old = byId.get(m.id);
			if (old && JSON.stringify(old) !== JSON.stringify(m)) {
				messages[messages.indexOf(old)] = m;
				byId.set(m.id, m);
				changed = true;
			}
		}
		if (fresh.length) {
			for (const m of fresh) byId.set(m.id, m);
			messages = messages.concat(fresh);
			changed = true;
		}
		return {changed, fresh};
	}

	async function poll(first) {
		const r = await api.get(`/projects/${id}/messages?limit=${PAGE}`, {etag: first ? null : etag, signal: ctx.signal});
		if (r.notModified) return;
		etag = r.etag;
		if (first) {
			messages = r.data.data.slice().reverse();
			for (const m of messages) byId.set(m.id, m);
			olderCursor = r.data.next_cursor;
			renderList();
			return;
		}
		const stick = nearBottom();
		const {changed, fresh} = await merge(r.data.data, r.data.next_cursor);
		if (!changed) return;
		renderList();
		if (stick) toBottom();
		const others = fresh.filter((m) => !(m.author?.kind === 'client' && me && m.author.id === me.id));
		if (others.length === 1) announce(`New message from ${others[0].author?.name || 'the team'}.`);
		else if (others.length > 1) announce(`${others.length} new messages.`);
		markRead();
	}

	// ---- composer -------------------------------------------------------------------

	const taId = nextId('msg'), hintId = `${taId}-hint`, fileId = nextId('files');
	const textarea = h('textarea', {id: taId, name: 'body', rows: '2', maxlength: '10000', 'aria-describedby': hintId,
		dataset: {focusKey: 'composer'}});
	const fileInput = h('input', {type: 'file', id: fileId, multiple: true, class: 'file-input'});
	const uploadsEl = h('ul', {class: 'uploads', role: 'list', 'aria-label': 'Files to send'});
	const composerMsgs = messageArea();
	const sendBtn = h('button', {type: 'submit', class: 'btn btn-primary'}, 'Send');
	const dropHint = h('div', {class: 'drop-overlay', 'aria-hidden': 'true'}, 'Drop files to attach them');
	const form = h('form', {class: 'composer card', novalidate: true, 'aria-labelledby': `${taId}-title`},
		h('h2', {class: 'sr-only', id: `${taId}-title`}, 'Write a message'),
		h('label', {for: taId, class: 'composer-label'}, 'Message'),
		textarea,
		h('p', {class: 'hint', id: hintId}, 'Press Enter to send, Shift+Enter for a new line. You can also drop files here.'),
		uploadsEl, composerMsgs,
		h('div', {class: 'composer-actions'},
			h('span', {class: 'file-pick'}, fileInput, h('label', {for: fileId, class: 'btn btn-secondary'}, 'Attach files')),
			sendBtn),
		dropHint);

	const uploads = []; // {key, file, state:'uploading'|'ready'|'failed', attachment, error, el, bar, ctrl}
	let sendQueued = false;
	let idemKey = null;

	function renderUpload(u) {
		const status = u.state === 'uploading' ? `Uploading… ${Math.round(u.progress * 100)}%`
			: u.state === 'ready' ? 'Ready to send' : 'Not uploaded';
		if (!u.el) {
			u.bar = progressBar(0, `Upload progress for ${u.file.name}`, 'bar-upload');
			u.statusEl = h('span', {class: 'upload-status small'});
			u.errorEl = h('div', {class: 'upload-error'});
			u.removeBtn = h('button', {type: 'button', class: 'btn btn-inline', dataset: {focusKey: `rm-${u.key}`},
				onclick: () => removeUpload(u)}, 'Remove', h('span', {class: 'sr-only'}, ` ${u.file.name}`));
			u.el = h('li', {class: 'upload', dataset: {state: u.state}},
				h('div', {class: 'upload-top'},
					h('span', {class: 'upload-name'}, u.file.name), h('span', {class: 'muted small'}, fmtBytes(u.file.size)),
					u.removeBtn),
				u.bar, u.statusEl, u.errorEl);
			uploadsEl.appendChild(u.el);
		}
		u.el.dataset.state = u.state;
		u.bar.set(u.state === 'failed' ? 0 : u.progress * 100);
		u.bar.hidden = u.state === 'failed';
		u.statusEl.textContent = status;
		if (u.state === 'failed' && !u.errorEl.firstChild)
			u.errorEl.append(h('p', {class: 'msg msg-error', role: 'alert'}, u.error));
		uploadsEl.hidden = uploads.length === 0;
	}

	function removeUpload(u) {
		if (u.ctrl) u.ctrl.abort();
		const i = uploads.indexOf(u);
		if (i >= 0) uploads.splice(i, 1);
		u.el?.remove();
		uploadsEl.hidden = uploads.length === 0;
		announce(`${u.file.name} removed.`);
		textarea.focus();
		maybeSend();
	}

	function addFiles(files) {
		for (const file of files) {
			const u = {key: nextId('up'), file, state: 'uploading', progress: 0, ctrl: new AbortController()};
			uploads.push(u);
			renderUpload(u);
			announce(`Uploading ${file.name}.`);
			upload(id, file, {signal: u.ctrl.signal, onProgress: (f) => {
				u.progress = f;
				renderUpload(u);
			}}).then((att) => {
				if (!uploads.includes(u)) return;
				u.state = 'ready';
				u.attachment = att;
				renderUpload(u);
				announce(`${file.name} uploaded.`);
			}, (err) => {
				if (!uploads.includes(u)) return;
				u.state = 'failed';
				u.error = err.message || `${file.name} could not be uploaded.`;
				renderUpload(u);
			}).finally(() => maybeSend());
		}
	}

	function maybeSend() {
		if (sendQueued && !uploads.some((u) => u.state === 'uploading')) {
			sendQueued = false;
			send();
		}
	}

	async function send() {
		composerMsgs.clear();
		const text = textarea.value;
		const ready = uploads.filter((u) => u.state === 'ready');
		if (uploads.some((u) => u.state === 'uploading')) {
			sendQueued = true;
			composerMsgs.info('Your message will be sent when the files have finished uploading.');
			return;
		}
		if (!text.trim() && !ready.length) {
			textarea.setAttribute('aria-invalid', 'true');
			composerMsgs.error(uploads.length ? 'None of the files could be uploaded. Remove them, or write a message.' : 'Write a message or attach a file.');
			textarea.focus();
			return;
		}
		textarea.removeAttribute('aria-invalid');
		const payload = {};
		if (text.trim()) payload.body = text;
		if (ready.length) payload.attachment_ids = ready.map((u) => u.attachment.id);
		if (!idemKey) idemKey = crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
		sendBtn.disabled = true;
		form.setAttribute('aria-busy', 'true');
		try {
			const r = await api.post(`/projects/${id}/messages`, payload, {headers: {'Idempotency-Key': idemKey}});
			idemKey = null;
			textarea.value = '';
			autosize();
			for (const u of uploads.splice(0)) u.el?.remove();
			uploadsEl.hidden = true;
			const m = r.data;
			if (!byId.has(m.id)) {
				byId.set(m.id, m);
				messages.push(m);
			}
			renderList();
			toBottom();
			announce('Message sent.');
			markRead();
		} catch (err) {
			if (err.status === 422) {
				idemKey = null;
				const bad = err.errors.find((e) => /^attachment_ids/.test(e.field));
				composerMsgs.error(bad ? 'One of the files can no longer be attached. Remove it and try again.'
					: err.fieldError('body') ? `Your message ${err.fieldError('body').message}.` : api.describe(err));
			} else if (err.code === 'idempotency_conflict') {
				idemKey = null;
				composerMsgs.error('Your message could not be sent. Please try again.');
			} else {
				composerMsgs.error(`Your message could not be sent. ${api.describe(err)}`);
			}
		} finally {
			sendBtn.disabled = false;
			form.removeAttribute('aria-busy');
		}
	}

	function autosize() {
		textarea.style.height = 'auto';
		textarea.style.height = `${Math.min(textarea.scrollHeight + 2, 260)}px`;
	}

	textarea.addEventListener('input', () => {
		autosize();
		idemKey = null;
		if (textarea.value) textarea.removeAttribute('aria-invalid');
	});
	textarea.addEventListener('keydown', (e) => {
		if (e.key === 'Enter' && !e.shiftKey && !e.ctrlKey && !e.metaKey && !e.altKey && !e.isComposing) {
			e.preventDefault();
			form.requestSubmit();
		}
	});
	form.addEventListener('submit', (e) => {
		e.preventDefault();
		send();
	});
	fileInput.addEventListener('change', () => {
		if (fileInput.files.length) addFiles([...fileInput.files]);
		fileInput.value = '';
	});

	// drag and drop anywhere on the page
	let dragDepth = 0;
	const hasFiles = (e) => [...(e.dataTransfer?.types || [])].includes('Files');
	const onDragEnter = (e) => {
		if (!hasFiles(e)) return;
		e.preventDefault();
		dragDepth++;
		form.classList.add('dragging');
	};
	const onDragOver = (e) => {
		if (!hasFiles(e)) return;
		e.preventDefault();
		e.dataTransfer.dropEffect = 'copy';
	};
	const onDragLeave = (e) => {
		if (!hasFiles(e)) return;
		dragDepth = Math.max(0, dragDepth - 1);
		if (!dragDepth) form.classList.remove('dragging');
	};
	const onDrop = (e) => {
		if (!hasFiles(e)) return;
		e.preventDefault();
		dragDepth = 0;
		form.classList.remove('dragging');
		if (e.dataTransfer.files.length) addFiles([...e.dataTransfer.files]);
	};
	document.addEventListener('dragenter', onDragEnter);
	document.addEventListener('dragover', onDragOver);
	document.addEventListener('dragleave', onDragLeave);
	document.addEventListener('drop', onDrop);
	const onVisible = () => { if (document.visibilityState === 'visible') markRead(); };
	document.addEventListener('visibilitychange', onVisible);

	// ---- start --------------------------------------------------------------------------

	function gone() {
		if (stop) stop();
		stop = null;
		ctx.setTitle('Project not found');
		pageMsgs.clear();
		body.replaceChildren(h('div', {class: 'msg msg-error', role: 'alert'},
			h('p', null, 'This project does not exist, or you do not have access to it.'),
			h('p', null, h('a', {href: '/'}, 'Back to your projects'))));
	}

	async function start() {
		try {
			const [pr] = await Promise.all([
				api.get(`/projects/${id}`, {signal: ctx.signal}),
				poll(true),
			]);
			projectName = pr.data.name;
			crumbCurrent.textContent = projectName;
			subtitle.textContent = projectName;
			ctx.setTitle(`Messages – ${projectName}`);
		} catch (err) {
			if (err.name === 'AbortError' || err.status === 401) return;
			if (err.status === 404) return gone();
			body.replaceChildren(errorBlock(`The messages could not be loaded. ${api.describe(err)}`, () => {
				body.replaceChildren(loading('Loading messages…'));
				start();
			}));
			return;
		}
		uploadsEl.hidden = true;
		body.replaceChildren(olderBox, emptyEl, listEl, form);
		renderList();
		toBottom();
		markRead();
		if (!stop && !ctx.signal.aborted) {
			stop = api.poll(() => poll(false).catch((err) => {
				if (err.status === 404) gone();
				throw err;
			}), POLL_MS);
		}
	}
	start();

	return () => {
		if (stop) stop();
		for (const u of uploads) u.ctrl?.abort();
		document.removeEventListener('dragenter', onDragEnter);
		document.removeEventListener('dragover', onDragOver);
		document.removeEventListener('dragleave', onDragLeave);
		document.removeEventListener('drop', onDrop);
		document.removeEventListener('visibilitychange', onVisible);
	};
}
