// Browser test driver: serves the LuCI app's real htdocs plus the project's harness on 127.0.0.1, answers
// /ubus JSON-RPC by running the real rpcd plugin script (list once, then `call METHOD` with the arguments as
// JSON on stdin, as rpcd does), backs uci with a real config file, and drives Debian's chromium through
// playwright-core: each page is loaded and screenshotted, then "Protect" is clicked on a discovered device,
// the modal form saved and Save & Apply pressed; the config file must then hold the new device section.
//
// Environment: MOAT_BIN, MOAT_CONFIG, MOAT_STATE_DIR, MOAT_DHCP_LEASES, MOAT_ODHCPD_LEASES (passed to the
// plugin), MOAT_BROWSER_OUT (screenshots), MOAT_PROTECT_MAC (the client to protect), CHROMIUM (default
// /usr/bin/chromium). Prints one JSON line {"ok":true,...} at the end; exits non-zero on any failure.
'use strict';
const http = require('http');
const fs = require('fs');
const path = require('path');
const os = require('os');
const { spawn, spawnSync } = require('child_process');
const { chromium } = require(path.join(__dirname, 'node_modules', 'playwright-core'));

const root = path.resolve(__dirname, '..', '..');
const htdocs = path.join(root, 'openwrt/luci-app-moat/htdocs');
const plugin = path.join(root, 'openwrt/luci-app-moat/root/usr/libexec/rpcd/luci.moat');
const harness = path.join(__dirname, 'harness');
const config = process.env.MOAT_CONFIG;
const out = process.env.MOAT_BROWSER_OUT;
const mac = process.env.MOAT_PROTECT_MAC;
const log = (...a) => console.error('browser:', ...a);

// ---- UCI text <-> sections (the subset moat's files use: config/option/list, quoted values) ----
function tokens(line) {
	const t = []; let i = 0;
	while (i < line.length) {
		if (/\s/.test(line[i])) { i++; continue; }
		if (line[i] == '#') break;
		let v = '';
		while (i < line.length && !/\s/.test(line[i])) {
			const q = line[i];
			if (q == "'" || q == '"') { const j = line.indexOf(q, i + 1); if (j < 0) throw new Error('unterminated quote: ' + line); v += line.slice(i + 1, j); i = j + 1; }
			else if (q == '\\') { v += line[i + 1]; i += 2; }
			else v += line[i++];
		}
		t.push(v);
	}
	return t;
}
function parseUci(text) {
	const secs = []; let cur = null, anon = {};
	for (const line of text.split('\n')) {
		const t = tokens(line);
		if (!t.length) continue;
		if (t[0] == 'config') {
			const n = anon[t[1]] = (anon[t[1]] || 0) + (t[2] ? 0 : 1);
			cur = { '.type': t[1], '.name': t[2] || ('cfg' + t[1] + (n - 1)), '.anonymous': !t[2] };
			secs.push(cur);
		} else if (t[0] == 'option' && cur) cur[t[1]] = t[2];
		else if (t[0] == 'list' && cur) (cur[t[1]] = cur[t[1]] || []).push(t[2]);
	}
	return secs;
}
const quote = v => "'" + String(v).replace(/'/g, "'\\''") + "'";
function renderUci(secs) {
	return secs.map(s => ['config ' + s['.type'] + (s['.anonymous'] ? '' : ' ' + quote(s['.name']))].concat(
		Object.keys(s).filter(k => k[0] != '.').map(k => Array.isArray(s[k]) ? s[k].map(v => '\tlist ' + k + ' ' + quote(v)).join('\n') : '\toption ' + k + ' ' + quote(s[k]))
	).join('\n') + '\n').join('\n');
}

// ---- the plugin, run as rpcd runs it ----
function runPlugin(args, stdin) {
	return new Promise((resolve, reject) => {
		const p = spawn(plugin, args, { env: process.env, stdio: ['pipe', 'pipe', 'pipe'] });
		let o = '', e = '';
		p.stdout.on('data', d => o += d); p.stderr.on('data', d => e += d);
		const timer = setTimeout(() => p.kill('SIGKILL'), 30000); // rpcd's exec timeout
		p.on('close', code => {
			clearTimeout(timer);
			try { const v = JSON.parse(o); if (typeof v != 'object' || Array.isArray(v) || v === null) throw new Error('not an object'); resolve(v); }
			catch (x) { reject(new Error(`plugin ${args.join(' ')}: ${x.message}: ${o} ${e}`)); }
		});
		if (stdin != null) p.stdin.end(stdin); else p.stdin.end();
	});
}

const calls = [];
async function main() {
	const signature = await runPlugin(['list'], null);
	let staged = null;
	const server = http.createServer(async (req, res) => {
		const body = await new Promise(r => { let b = ''; req.on('data', d => b += d); req.on('end', () => r(b)); });
		const send = (code, type, data) => { res.writeHead(code, { 'Content-Type': type, 'Cache-Control': 'no-store' }); res.end(data); };
		try {
			const url = new URL(req.url, 'http://127.0.0.1');
			if (req.method == 'POST' && url.pathname == '/ubus') {
				const rq = JSON.parse(body), [, object, method, args] = rq.params;
				if (object != 'luci.moat' || !signature[method]) return send(200, 'application/json', JSON.stringify({ jsonrpc: '2.0', id: rq.id, error: { code: -32000, message: 'Object not found' } }));
				// rpcd passes only the arguments named in the method's signature (ubus policy).
				const a = {}; for (const k of Object.keys(args || {})) if (k in signature[method]) a[k] = args[k];
				calls.push(method);
				const r = await runPlugin(['call', method], JSON.stringify(a));
				return send(200, 'application/json', JSON.stringify({ jsonrpc: '2.0', id: rq.id, result: [0, r] }));
			}
			if (url.pathname == '/uci/moat') return send(200, 'application/json', JSON.stringify(parseUci(fs.readFileSync(config, 'utf8'))));
			if (req.method == 'POST' && url.pathname == '/uci-save') { staged = JSON.parse(body).moat; return send(200, 'text/plain', 'ok'); }
			if (req.method == 'POST' && url.pathname == '/uci-apply') {
				if (staged) fs.writeFileSync(config, renderUci(staged));
				staged = null;
				return send(200, 'text/plain', 'ok');
			}
			if (url.pathname == '/favicon.ico') return send(204, 'image/x-icon', '');
			let file = null;
			if (url.pathname.startsWith('/luci-static/')) file = path.join(htdocs, url.pathname);
			if (url.pathname.startsWith('/harness/')) file = path.join(harness, url.pathname.slice(9));
			if (file && !path.relative(root, file).startsWith('..') && fs.existsSync(file))
				return send(200, file.endsWith('.js') ? 'application/javascript' : 'text/html', fs.readFileSync(file));
			send(404, 'text/plain', 'not found');
		} catch (e) { log(e.stack); send(500, 'text/plain', String(e)); }
	});
	await new Promise(r => server.listen(0, '127.0.0.1', r));
	const base = `http://127.0.0.1:${server.address().port}/harness/index.html`;
	const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'moat-chromium-'));
	const browser = await chromium.launchPersistentContext(profile, {
		executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
		args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
		viewport: { width: 1200, height: 900 },
	});
	const result = { ok: false, screenshots: [] };
	try {
		const page = browser.pages()[0] || await browser.newPage();
		const errors = [];
		page.on('pageerror', e => errors.push(String(e)));
		page.on('console', m => { if (m.type() == 'error') errors.push(m.text()); });
		const open = async (q, shot) => {
			await page.goto(base + '?' + q);
			await page.waitForFunction(() => window.__moatRendered || window.__moatError, null, { timeout: 20000 });
			const err = await page.evaluate(() => window.__moatError);
			if (err) throw new Error(q + ': ' + err);
			await page.screenshot({ path: path.join(out, shot), fullPage: true });
			result.screenshots.push(path.join(out, shot));
		};
		await open('view=moat/status', 'luci-status.png');
		const graphs = await page.$$eval('svg.moat-graph polyline.wire', l => l.map(p => p.getAttribute('points').split(' ').length));
		result.status_graph_points = graphs;
		result.status_devices = await page.$$eval('#moat-devices tr', r => r.length - 1);
		await page.waitForTimeout(2500); // one poll round
		result.polled = calls.filter(c => c == 'status').length;
		await open('include=status/include/75_moat', 'luci-overview-include.png');
		result.overview_rows = await page.$$eval('#moat-overview tr', r => r.map(x => x.textContent));
		await open('view=moat/tunnels', 'luci-tunnels.png');
		await open('view=moat/devices', 'luci-devices.png');
		const row = page.locator(`#moat-discovered tr[data-mac="${mac}"]`);
		await row.locator('button.moat-protect').click();
		await page.waitForSelector('#modal .cbi-value[data-name="name"] input');
		result.prefilled = { name: await page.inputValue('#modal .cbi-value[data-name="name"] input'), mac: await page.inputValue('#modal .cbi-value[data-name="mac"] input') };
		await page.selectOption('#modal .cbi-value[data-name="route"] select', 'vpn');
		await page.screenshot({ path: path.join(out, 'luci-devices-protect.png'), fullPage: true });
		result.screenshots.push(path.join(out, 'luci-devices-protect.png'));
		await page.click('#modal button.cbi-button-positive');
		await page.click('#save-apply');
		await page.waitForFunction(() => window.__moatApplied || document.querySelector('.alert-message.error'), null, { timeout: 20000 });
		const notes = await page.$$eval('.alert-message', n => n.map(x => x.textContent));
		if (!await page.evaluate(() => window.__moatApplied)) throw new Error('not applied: ' + notes.join(' | '));
		await page.screenshot({ path: path.join(out, 'luci-devices-applied.png'), fullPage: true });
		result.screenshots.push(path.join(out, 'luci-devices-applied.png'));
		result.rpc_calls = [...new Set(calls)];
		result.page_errors = errors;
		result.ok = errors.length == 0;
	} finally {
		await browser.close();
		server.close();
		fs.rmSync(profile, { recursive: true, force: true });
	}
	console.log(JSON.stringify(result));
	process.exit(result.ok ? 0 : 1);
}
main().catch(e => { log(e.stack || e); process.exit(1); });
