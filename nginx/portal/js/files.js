// Attachments: download links (a fresh presigned URL per click) and uploads
// (POST /projects/{id}/attachments -> XHR PUT to the presigned URL with a
// progress event stream -> POST /attachments/{id}/complete).

import * as api from './api.js';
import {h, fmtBytes} from './dom.js';

export function downloadLink(att, onError) {
	const a = h('a', {href: `${api.BASE}/attachments/${att.id}/download?redirect=1`, class: 'file-link',
		dataset: {focusKey: `dl-${att.id}`, attachmentId: att.id}}, att.filename);
	a.addEventListener('click', async (e) => {
		e.preventDefault();
		if (a.getAttribute('aria-busy') === 'true') return;
		a.setAttribute('aria-busy', 'true');
		try {
			const r = await api.get(`/attachments/${att.id}/download`);
			// the presigned URL answers with Content-Disposition: attachment,
			// so the page stays where it is
			location.assign(r.data.url);
		} catch (err) {
			if (onError) {
				onError(err.code === 'upload_incomplete'
					? `${att.filename} is still being uploaded. Try again in a moment.`
					: err.status === 404 ? `${att.filename} is no longer available.`
						: `${att.filename} could not be downloaded. ${api.describe(err)}`);
			}
		} finally {
			a.removeAttribute('aria-busy');
		}
	});
	return a;
}

export function fileList(attachments, onError) {
	if (!attachments?.length) return null;
	return h('ul', {class: 'files', role: 'list'}, attachments.map((att) =>
		h('li', {class: 'file'},
			h('span', {class: 'file-icon', 'aria-hidden': 'true'}),
			downloadLink(att, onError),
			h('span', {class: 'file-size muted'}, ` ${fmtBytes(att.size)}`))));
}

// Browsers give '' for unknown types and may add parameters; the API wants
// a lower-case type/subtype.
export function contentTypeOf(file) {
	const t = String(file.type || '').split(';')[0].trim().toLowerCase();
	return /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(t) ? t : 'application/octet-stream';
}

export class UploadError extends Error {
	constructor(message, code) {
		super(message);
		this.code = code;
	}
}

function limitText(detail) {
	const m = /(\d+)\s*bytes/.exec(detail || '');
	return m ? ` The limit is ${fmtBytes(Number(m[1]))}.` : '';
}

// Upload one file; onProgress(fraction 0..1).  Resolves with the ready
// attachment; rejects with UploadError (a sentence for the user).
export async function upload(projectId, file, {onProgress, signal} = {}) {
	let created;
	try {
		created = (await api.post(`/projects/${projectId}/attachments`, {
			filename: file.name.slice(0, 255) || 'file', content_type: contentTypeOf(file), size: file.size,
		}, {headers: {'Idempotency-Key': `up-${crypto.randomUUID ? crypto.randomUUID() : Math.random().toString(36).slice(2)}`}})).data;
	} catch (err) {
		if (err.status === 413)
			throw new UploadError(err.problem?.detail && /quota/i.test(err.problem.detail)
				? `${file.name} cannot be uploaded: this portal's storage is full.`
				: `${file.name} is too large.${limitText(err.problem?.detail)}`, 'too_large');
		if (err.status === 415)
			throw new UploadError(`${file.name} cannot be uploaded: files of this type (${contentTypeOf(file)}) are not allowed.`, 'blocked_type');
		if (err.status === 422) {
			if (file.size === 0) throw new UploadError(`${file.name} is empty.`, 'empty');
			const e = err.errors[0];
			throw new UploadError(`${file.name} cannot be uploaded: ${e ? `${e.field.replace(/_/g, ' ')} ${e.message}` : 'invalid file'}.`, 'invalid');
		}
		throw new UploadError(`${file.name} could not be uploaded. ${api.describe(err)}`, err.code);
	}
	const up = created.upload;
	await new Promise((resolve, reject) => {
		const xhr = new XMLHttpRequest();
		xhr.open(up.method || 'PUT', up.url);
		for (const [k, v] of Object.entries(up.headers || {})) {
			// the browser sets Content-Length (and refuses to let us)
			if (k.toLowerCase() !== 'content-length' && k.toLowerCase() !== 'host') xhr.setRequestHeader(k, v);
		}
		xhr.upload.onprogress = (e) => {
			if (e.lengthComputable && onProgress) onProgress(e.loaded / e.total);
		};
		xhr.onload = () => {
			if (xhr.status >= 200 && xhr.status < 300) resolve();
			else reject(new UploadError(`${file.name} could not be uploaded (storage answered ${xhr.status}). Try again.`, 'store'));
		};
		xhr.onerror = () => reject(new UploadError(`${file.name} could not be uploaded: the connection failed. Try again.`, 'network'));
		xhr.onabort = () => reject(new UploadError(`Upload of ${file.name} cancelled.`, 'aborted'));
		if (signal) signal.addEventListener('abort', () => xhr.abort(), {once: true});
		xhr.send(file);
	});
	if (onProgress) onProgress(1);
	try {
		return (await api.post(`/attachments/${created.id}/complete`, {})).data;
	} catch (err) {
		throw new UploadError(err.code === 'upload_incomplete'
			? `${file.name} did not arrive completely. Try again.`
			: `${file.name} could not be saved. ${api.describe(err)}`, err.code);
	}
}
