// Project page: milestones as a timeline, deliverables (approve / request
// changes on delivered ones), tasks grouped by milestone.  Polls the project
// and its tasks with ETags while the page is visible.

import * as api from '../api.js';
import {h, nextId, loading, errorBlock, messageArea, progressBar, badge, dateEl, timeEl, fmtDateTime,
	plural, focusKey, restoreFocus, announce} from '../dom.js';
import {fileList} from '../files.js';

const POLL_MS = 5000;

export function render(ctx) {
	const id = ctx.params.id;
	ctx.setTitle('Project');
	const h1 = h('h1', {class: 'project-title'}, 'Loading project…');
	const crumbs = h('nav', {'aria-label': 'Breadcrumb', class: 'crumbs'},
		h('ol', null, h('li', null, h('a', {href: '/'}, 'Projects')), h('li', {'aria-current': 'page', class: 'crumb-current'}, '…')));
	const msgs = messageArea('page-messages');
	const body = h('div', {class: 'page-body'}, loading('Loading project…'));
	ctx.main.append(crumbs, h('div', {class: 'page-head'}, h1), msgs, body);

	let project = null, tasks = [], etagP = null, etagT = null, stop = null;
	// open decision forms survive re-renders: deliverable id -> {kind, text}
	const forms = new Map();
	let sections = null;

	const fileError = (text) => msgs.error(text);

	// ---- rendering ----------------------------------------------------------

	function summary(p) {
		const unread = p.unread_messages || 0;
		return h('section', {class: 'project-summary card', 'aria-label': 'Summary'},
			h('div', {class: 'summary-row'},
				badge('project', p.status),
				p.start_date || p.due_date ? h('p', {class: 'dates muted'},
					p.start_date ? ['Started ', dateEl(p.start_date)] : null,
					p.start_date && p.due_date ? ' · ' : null,
					p.due_date ? ['Due ', dateEl(p.due_date)] : null) : null),
			p.description ? h('p', {class: 'project-desc'}, p.description) : null,
			h('div', {class: 'progress-row'},
				progressBar(p.progress.percent, 'Overall progress'),
				h('p', {class: 'progress-text'}, `${p.progress.percent}% complete`,
					h('span', {class: 'muted'}, ` · ${p.progress.tasks_done} of ${plural(p.progress.tasks_total, 'task', 'tasks')} done`))),
			h('p', {class: 'summary-actions'},
				h('a', {href: `/projects/${p.id}/messages`, class: 'btn btn-primary', dataset: {focusKey: 'messages'}},
					'Messages', unread ? h('span', {class: 'count count-on-primary'}, `${unread} unread`) : null)));
	}

	function milestones(p) {
		const list = p.milestones || [];
		return h('section', {class: 'section', 'aria-labelledby': 'sec-milestones'},
			h('h2', {id: 'sec-milestones'}, 'Milestones'),
			list.length ? h('ol', {class: 'timeline', role: 'list'}, list.map((m) => {
				const hid = `ms-${m.id}`;
				return h('li', {class: `timeline-item status-${m.status}`, dataset: {milestoneId: m.id}},
					h('span', {class: 'timeline-dot', 'aria-hidden': 'true'}),
					h('div', {class: 'timeline-body'},
						h('div', {class: 'item-top'}, h('h3', {id: hid}, m.title), badge('milestone', m.status)),
						m.due_date ? h('p', {class: 'muted small'}, 'Due ', dateEl(m.due_date)) : null,
						m.description ? h('p', {class: 'item-desc'}, m.description) : null,
						h('div', {class: 'progress-row'},
							progressBar(m.percent, `${m.title} progress`),
							h('p', {class: 'progress-text small'}, `${m.percent}%`,
								h('span', {class: 'muted'}, ` · ${m.progress.tasks_done} of ${plural(m.progress.tasks_total, 'task', 'tasks')} done`)))));
			})) : h('p', {class: 'muted'}, 'No milestones yet.'));
	}

	function decisionText(d) {
		const by = d.decision.by?.name || 'the client';
		return d.decision.status === 'approved' ? `Approved by ${by}` : `Changes requested by ${by}`;
	}

	function decisionForm(d, kind) {
		const state = forms.get(d.id);
		const tid = nextId('comment');
		const area = h('textarea', {id: tid, rows: '3', maxlength: '5000', dataset: {focusKey: `comment-${d.id}`},
			required: kind === 'changes'});
		area.value = state?.text || '';
		area.addEventListener('input', () => { forms.get(d.id).text = area.value; });
		const fm = messageArea();
		const submit = h('button', {type: 'submit', class: 'btn btn-primary', dataset: {focusKey: `confirm-${d.id}`}},
			kind === 'approve' ? 'Confirm approval' : 'Send change request');
		const cancel = h('button', {type: 'button', class: 'btn btn-secondary', dataset: {focusKey: `cancel-${d.id}`}}, 'Cancel');
		const form = h('form', {class: 'decision-form', novalidate: true, 'aria-label': kind === 'approve' ? `Approve ${d.title}` : `Request changes to ${d.title}`},
			h('label', {for: tid}, kind === 'approve' ? 'Comment (optional)' : 'What needs to change?'),
			area, fm,
			h('div', {class: 'actions'}, submit, cancel));
		const close = () => {
			forms.delete(d.id);
			renderSections();
			restoreFocus(ctx.main, `${kind === 'approve' ? 'approve' : 'changes'}-${d.id}`);
		};
		cancel.addEventListener('click', close);
		form.addEventListener('keydown', (e) => {
			if (e.key === 'Escape' && !cancel.disabled) {
				e.preventDefault();
				close();
			}
		});
		form.addEventListener('submit', async (e) => {
			e.preventDefault();
			const comment = area.value;
			if (kind === 'changes' && !comment.trim()) {
				area.setAttribute('aria-invalid', 'true');
				fm.error('Describe what needs to change.');
				area.focus();
				return;
			}
			area.removeAttribute('aria-invalid');
			submit.disabled = true;
			cancel.disabled = true;
			fm.info(kind === 'approve' ? 'Approving…' : 'Sending…');
			try {
				const path = `/projects/${id}/deliverables/${d.id}/${kind === 'approve' ? 'approve' : 'request-changes'}`;
				const body = kind === 'approve' ? (comment.trim() ? {comment} : {}) : {comment};
				const r = await api.post(path, body);
				forms.delete(d.id);
				const i = project.deliverables.findIndex((x) => x.id === d.id);
				if (i >= 0) project.deliverables[i] = r.data;
				etagP = null; // the next poll refetches the whole project
				renderSections();
				msgs.ok(kind === 'approve' ? `You approved “${d.title}”.` : `Your change request for “${d.title}” was sent.`);
				const el = ctx.main.querySelector(`[data-deliverable-id="${d.id}"] h3`);
				if (el) {
					el.setAttribute('tabindex', '-1');
					el.focus();
				}
				poke();
			} catch (err) {
				submit.disabled = false;
				cancel.disabled = false;
				if (err.code === 'invalid_state') {
					forms.delete(d.id);
					msgs.error(`“${d.title}” can no longer be decided on: it is not awaiting review any more.`);
					etagP = null;
					poke();
				} else if (err.status === 422) {
					fm.error(api.describe(err));
					area.focus();
				} else {
					fm.error(api.describe(err));
				}
			}
		});
		return form;
	}

	function deliverable(d) {
		const hid = `dl-${d.id}`;
		const open = forms.get(d.id);
		const actions = d.status === 'delivered' && !open ? h('div', {class: 'actions'},
			h('button', {type: 'button', class: 'btn btn-primary', dataset: {focusKey: `approve-${d.id}`}, onclick: () => {
				forms.set(d.id, {kind: 'approve', text: ''});
				renderSections();
				restoreFocus(ctx.main, `comment-${d.id}`);
			}}, 'Approve', h('span', {class: 'sr-only'}, ` ${d.title}`)),
			h('button', {type: 'button', class: 'btn btn-secondary', dataset: {focusKey: `changes-${d.id}`}, onclick: () => {
				forms.set(d.id, {kind: 'changes', text: ''});
				renderSections();
				restoreFocus(ctx.main, `comment-${d.id}`);
			}}, 'Request changes', h('span', {class: 'sr-only'}, ` to ${d.title}`))) : null;
		return h('li', {class: `deliverable card status-${d.status}`, dataset: {deliverableId: d.id}},
			h('article', {'aria-labelledby': hid},
				h('div', {class: 'item-top'}, h('h3', {id: hid}, d.title), badge('deliverable', d.status)),
				h('dl', {class: 'inline-facts'},
					h('div', null, h('dt', null, 'Due'), h('dd', null, dateEl(d.due_date))),
					d.delivered_at ? h('div', null, h('dt', null, 'Delivered'), h('dd', null, timeEl(d.delivered_at, fmtDateTime(d.delivered_at)))) : null),
				d.description ? h('p', {class: 'item-desc'}, d.description) : null,
				fileList(d.attachments, fileError),
				d.decision ? h('div', {class: `decision decision-${d.decision.status}`},
					h('p', null, h('strong', null, decisionText(d)), ' on ', timeEl(d.decision.at, fmtDateTime(d.decision.at))),
					d.decision.comment ? h('blockquote', {class: 'comment'}, d.decision.comment) : null) : null,
				d.status === 'delivered' ? h('p', {class: 'review-note'}, 'Ready for your review.') : null,
				actions,
				open && d.status === 'delivered' ? decisionForm(d, open.kind) : null));
	}

	function deliverables(p) {
		const list = p.deliverables || [];
		return h('section', {class: 'section', 'aria-labelledby': 'sec-deliverables'},
			h('h2', {id: 'sec-deliverables'}, 'Deliverables'),
			list.length ? h('ul', {class: 'deliverables', role: 'list'}, list.map(deliverable))
				: h('p', {class: 'muted'}, 'No deliverables yet.'));
	}

	function taskSection(p) {
		const groups = [];
		const known = new Map((p.milestones || []).map((m) => [m.id, m]));
		for (const m of p.milestones || []) {
			const ts = tasks.filter((t) => t.milestone_id === m.id);
			if (ts.length) groups.push({title: m.title, id: m.id, tasks: ts});
		}
		const rest = tasks.filter((t) => !t.milestone_id || !known.has(t.milestone_id));
		if (rest.length) groups.push({title: 'Without a milestone', id: 'other', tasks: rest});
		return h('section', {class: 'section', 'aria-labelledby': 'sec-tasks'},
			h('h2', {id: 'sec-tasks'}, 'Tasks'),
			groups.length ? groups.map((g) => h('div', {class: 'task-group'},
				h('div', {class: 'task-group-head'},
					h('h3', {id: `tg-${g.id}`}, g.title),
					h('p', {class: 'muted small'}, `${g.tasks.filter((t) => t.status === 'done').length} of ${g.tasks.length} done`)),
				h('ul', {class: 'tasks', role: 'list', 'aria-labelledby': `tg-${g.id}`}, g.tasks.map((t) =>
					h('li', {class: `task status-${t.status}`, dataset: {taskId: t.id}},
						h('span', {class: 'task-check', 'aria-hidden': 'true'}),
						h('span', {class: 'task-title'}, t.title),
						t.due_date ? h('span', {class: 'muted small task-due'}, 'Due ', dateEl(t.due_date)) : null,
						badge('task', t.status))))))
				: h('p', {class: 'muted'}, 'No tasks yet.'));
	}

	function renderSections() {
		if (!project) return;
		const key = focusKey();
		const next = h('div', {class: 'project-sections'},
			summary(project), milestones(project), deliverables(project), taskSection(project));
		if (sections) sections.replaceWith(next);
		else body.replaceChildren(next);
		sections = next;
		restoreFocus(ctx.main, key);
	}

	function showProject(p) {
		const first = !project;
		project = p;
		h1.textContent = p.name;
		crumbs.querySelector('.crumb-current').textContent = p.name;
		ctx.setTitle(p.name);
		if (first) announce(`${p.name} loaded`);
		renderSections();
	}

	// ---- data -----------------------------------------------------------------

	async function fetchTasks(force) {
		const r = await api.get(`/projects/${id}/tasks?limit=200`, {etag: force ? null : etagT, signal: ctx.signal});
		if (r.notModified) return false;
		etagT = r.etag;
		let list = r.data.data, cursor = r.data.next_cursor;
		while (cursor) {
			const more = await api.get(`/projects/${id}/tasks?limit=200&cursor=${encodeURIComponent(cursor)}`, {signal: ctx.signal});
			list = list.concat(more.data.data);
			cursor = more.data.next_cursor;
		}
		tasks = list;
		return true;
	}

	async function refreshAll(force) {
		const [pr, changedTasks] = await Promise.all([
			api.get(`/projects/${id}`, {etag: force ? null : etagP, signal: ctx.signal}),
			fetchTasks(force),
		]);
		if (!pr.notModified) {
			etagP = pr.etag;
			showProject(pr.data);
		} else if (changedTasks) {
			renderSections();
		}
	}

	let pokeTimer = null;
	function poke() {
		clearTimeout(pokeTimer);
		pokeTimer = setTimeout(() => refreshAll(false).catch((err) => { if (err.status === 404) gone(); }), 300);
	}

	function gone() {
		if (stop) stop();
		stop = null;
		project = null;
		sections = null;
		h1.textContent = 'Project not found';
		ctx.setTitle('Project not found');
		crumbs.querySelector('.crumb-current').textContent = 'Not found';
		msgs.clear();
		body.replaceChildren(h('div', {class: 'msg msg-error', role: 'alert'},
			h('p', null, 'This project does not exist, or you do not have access to it.'),
			h('p', null, h('a', {href: '/'}, 'Back to your projects'))));
	}

	async function start() {
		try {
			await refreshAll(true);
		} catch (err) {
			if (err.name === 'AbortError' || err.status === 401) return;
			if (err.status === 404) return gone();
			h1.textContent = 'Project';
			body.replaceChildren(errorBlock(`The project could not be loaded. ${api.describe(err)}`, () => {
				body.replaceChildren(loading('Loading project…'));
				start();
			}));
			return;
		}
		if (!stop && !ctx.signal.aborted) {
			stop = api.poll(() => refreshAll(false).catch((err) => {
				// removed from the project while looking at it
				if (err.status === 404) gone();
				throw err;
			}), POLL_MS);
		}
	}
	start();
	return () => {
		clearTimeout(pokeTimer);
		if (stop) stop();
	};
}
