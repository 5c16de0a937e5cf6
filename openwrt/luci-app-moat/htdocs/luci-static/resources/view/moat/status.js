'use strict';
'require view';
'require poll';
'require ui';
'require moat.common as common';

/* Status: the daemon's state, per device and per tunnel, refreshed with poll, and a live graph
 * per shaped device: its real bytes/s against what leaves the router for it on the wire (real +
 * padding + cover). Spiky real traffic over a flat wire line is the picture of shaping working. */

var SVG = 'http://www.w3.org/2000/svg';
var W = 600, H = 140, PAD = 4;

function svgEl(tag, attrs) {
	var el = document.createElementNS(SVG, tag);
	for (var k in attrs) el.setAttribute(k, attrs[k]);
	return el;
}

function points(values, max, n) {
	var off = n - values.length;
	return values.map(function(v, i) {
		var x = PAD + (W - 2 * PAD) * (off + i) / Math.max(n - 1, 1);
		var y = H - PAD - (H - 2 * PAD) * (max ? v / max : 0);
		return x.toFixed(1) + ',' + y.toFixed(1);
	}).join(' ');
}

/* One graph: two series of bytes per interval, newest last. */
function graph(id, real, wire, labels) {
	var n = Math.max(real.length, wire.length, 2);
	var max = Math.max.apply(null, [ 1 ].concat(real, wire));
	var svg = svgEl('svg', { 'viewBox': '0 0 ' + W + ' ' + H, 'width': '100%', 'height': H, 'class': 'moat-graph', 'id': id,
		'preserveAspectRatio': 'none', 'style': 'background:#fafafa;border:1px solid #ddd' });
	[ 0.25, 0.5, 0.75 ].forEach(function(f) {
		svg.appendChild(svgEl('line', { 'x1': 0, 'x2': W, 'y1': H * f, 'y2': H * f, 'stroke': '#eee' }));
	});
	svg.appendChild(svgEl('polyline', { 'points': points(wire, max, n), 'fill': 'none', 'stroke': '#2a7ae2', 'stroke-width': 2, 'class': 'wire' }));
	svg.appendChild(svgEl('polyline', { 'points': points(real, max, n), 'fill': 'none', 'stroke': '#e2572a', 'stroke-width': 1.5, 'class': 'real' }));
	return E('div', { 'class': 'moat-graph-box' }, [
		svg,
		E('div', { 'style': 'font-size:90%' }, [
			E('span', { 'style': 'color:#e2572a' }, '■ ' + labels[0]), ' ',
			E('span', { 'style': 'color:#2a7ae2' }, '■ ' + labels[1]), ' ',
			_('peak %s/s, last %d s').format(common.formatBytes(max), n)
		])
	]);
}

function row(cells) {
	return E('tr', { 'class': 'tr' }, cells.map(function(c) { return E('td', { 'class': 'td' }, c); }));
}

function titles(cells) {
	return E('tr', { 'class': 'tr table-titles' }, cells.map(function(c) { return E('th', { 'class': 'th' }, c); }));
}

return view.extend({
	load: function() {
		return Promise.all([ L.resolveDefault(common.callStatus(), {}), L.resolveDefault(common.callSeries(), {}) ]);
	},

	renderContent: function(st, series) {
		var devs = st.devices || [], tuns = st.tunnels || [];
		var head = E('div', { 'class': 'cbi-section', 'id': 'moat-state' }, [
			E('p', {}, [ E('strong', {}, _('State') + ': '), st.running ? st.state : (st.state || _('not running')) ]),
			st.last_error ? E('p', { 'class': 'alert-message warning' }, _('Last error') + ': ' + st.last_error) : ''
		]);
		var dtab = E('table', { 'class': 'table', 'id': 'moat-devices' }, [
			titles([ _('Device'), _('MACs'), _('Route'), _('State'), _('Shaping'), _('Real up'), _('On the wire'), _('Drops'), _('Delay p50/p99') ])
		].concat(devs.map(function(d) {
			var c = d.counters;
			return row([
				d.name, (d.macs || []).join(', '), d.route,
				d.blocked_reason ? E('span', { 'title': d.blocked_reason }, d.state + ' ⚠') : d.state,
				d.shaped ? (d.shaper || '') + (d.shaping_mode ? ' (' + d.shaping_mode + ')' : '') : _('no'),
				c ? common.formatBytes(c.real_bytes_up) + ' / ' + c.real_packets_up + ' ' + _('pkts') : '-',
				c ? common.formatBytes(c.wire_bytes_up) + ' (' + _('cover') + ' ' + c.cover_packets_up + ')' : '-',
				c ? String(c.queue_drops) : '-',
				c && c.delay_p50_us != null ? (c.delay_p50_us / 1000).toFixed(1) + ' / ' + (c.delay_p99_us / 1000).toFixed(1) + ' ms' : '-'
			]);
		})));
		var ttab = E('table', { 'class': 'table', 'id': 'moat-tunnels' }, [
			titles([ _('Tunnel'), _('Type'), _('Device'), _('Up'), _('Last handshake') ])
		].concat(tuns.map(function(t) {
			return row([ t.name, t.type, t.device || '-', t.up ? _('yes') : _('no'),
				t.handshake_age != null ? _('%d s ago').format(t.handshake_age) : '-' ]);
		})));
		var graphs = [];
		var sd = (series && series.devices) || {};
		Object.keys(sd).forEach(function(name, i) {
			graphs.push(E('h4', {}, name));
			graphs.push(graph('moat-graph-dev-' + i, sd[name].real || [], sd[name].wire || [], [ _('real bytes/s'), _('on the wire') ]));
		});
		var stun = (series && series.tunnels) || {};
		Object.keys(stun).forEach(function(name, i) {
			graphs.push(E('h4', {}, _('Tunnel %s').format(name)));
			graphs.push(graph('moat-graph-tun-' + i, stun[name].rx || [], stun[name].tx || [], [ _('received/s'), _('sent/s') ]));
		});
		if (!graphs.length)
			graphs.push(E('p', {}, _('No byte series yet (shaped devices and tunnels appear once the daemon runs).')));
		return E('div', { 'id': 'moat-status' }, [
			head,
			E('div', { 'class': 'cbi-section' }, [ E('h3', {}, _('Devices')), dtab ]),
			E('div', { 'class': 'cbi-section' }, [ E('h3', {}, _('Tunnels')), ttab ]),
			E('div', { 'class': 'cbi-section' }, [ E('h3', {}, _('Traffic, last minutes')) ].concat(graphs))
		]);
	},

	render: function(data) {
		var self = this, box = E('div', {}, this.renderContent(data[0] || {}, data[1] || {}));
		poll.add(function() {
			return self.load().then(function(d) {
				box.replaceChild(self.renderContent(d[0] || {}, d[1] || {}), box.firstChild);
			});
		}, 2);
		return E('div', {}, [ E('h2', {}, _('moat: status')), box ]);
	},

	handleSave: null,
	handleSaveApply: null,
	handleReset: null
});
