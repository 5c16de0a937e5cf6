/* A small stand-in for LuCI's client framework, of this project's own, implementing only the parts of
 * LuCI's documented JS API (https://openwrt.github.io/luci/jsapi/) that moat's views use, so that the real
 * view files load unchanged in a browser: L.require with 'require x [as y]' headers, E(), _(),
 * String.prototype.format, baseclass/view/form/rpc/uci/ui/poll. rpc calls go to /ubus as LuCI's JSON-RPC
 * (answered by the real rpcd plugin script); uci talks to a real config file through the test server. */
(function() {
'use strict';

String.prototype.format = function() {
	var args = arguments, i = 0;
	return this.replace(/%([sdf%])/g, function(m, t) {
		if (t == '%') return '%';
		var v = args[i++];
		return t == 'd' ? String(Math.floor(+v)) : t == 'f' ? String(+v) : String(v);
	});
};

function E(tag, attrs, children) {
	var el = document.createElement(tag);
	if (Array.isArray(attrs) || typeof attrs == 'string' || attrs instanceof Node) { children = attrs; attrs = null; }
	for (var k in (attrs || {})) {
		var v = attrs[k];
		if (v == null) continue;
		if (typeof v == 'function') el.addEventListener(k, v);
		else el.setAttribute(k, v);
	}
	append(el, children);
	return el;
}

function append(el, c) {
	if (c == null || c === '') return;
	if (Array.isArray(c)) { c.forEach(function(x) { append(el, x); }); return; }
	el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
}

function _(s) { return s; }

/* Class: LuCI's baseclass, with extend() and super-less __init__. */
function Class() {}
Class.extend = function(proto) {
	var parent = this;
	var C = function() { if (this.__init__) return this.__init__.apply(this, arguments); };
	C.prototype = Object.create(parent.prototype);
	Object.keys(proto).forEach(function(k) { C.prototype[k] = proto[k]; });
	C.prototype.constructor = C;
	C.extend = Class.extend;
	C.super = function(name, args) { return parent.prototype[name].apply(this, args || []); };
	return C;
};

var L = {
	Class: Class,
	bind: function(fn, self) { var a = [].slice.call(arguments, 2); return function() { return fn.apply(self, a.concat([].slice.call(arguments))); }; },
	resolveDefault: function(p, d) { return Promise.resolve(p).catch(function() { return d; }); },
	isObject: function(o) { return o != null && typeof o == 'object'; },
	error: function(e) { console.error(e); throw e; },
	modules: {},
	/* 'require NAME [as ALIAS]' headers, compiled like LuCI does: a function of the dependencies. */
	require: function(name) {
		if (L.modules[name]) return L.modules[name];
		var url = '/luci-static/resources/' + name.replace(/\./g, '/') + '.js';
		L.modules[name] = fetch(url).then(function(r) {
			if (!r.ok) throw new Error(url + ': ' + r.status);
			return r.text();
		}).then(function(src) {
			var deps = [], names = [], re = /^\s*'require\s+([\w.]+)(?:\s+as\s+(\w+))?'\s*;/gm, m;
			while ((m = re.exec(src)) != null) {
				deps.push(L.require(m[1]));
				names.push(m[2] || m[1].split('.').pop());
			}
			return Promise.all(deps).then(function(instances) {
				var fn = new Function(['L', 'E', '_'].concat(names).join(','), src + '\n//# sourceURL=' + url);
				var cls = fn.apply(window, [L, E, _].concat(instances));
				if (typeof cls != 'function') throw new Error(name + ' did not return a class');
				return new cls();
			});
		});
		return L.modules[name];
	}
};

/* --- rpc: LuCI's JSON-RPC to /ubus --------------------------------------------------------- */
var rpc = { declare: function(d) {
	return function() {
		var args = {}, a = arguments;
		(d.params || []).forEach(function(p, i) { if (a[i] !== undefined) args[p] = a[i]; });
		return fetch('/ubus', { method: 'POST', headers: { 'Content-Type': 'application/json' },
			body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'call', params: [ '00000000000000000000000000000000', d.object, d.method, args ] })
		}).then(function(r) { return r.json(); }).then(function(res) {
			if (!res.result || res.result[0] !== 0) throw new Error('RPC error ' + JSON.stringify(res));
			var data = res.result[1];
			if (d.expect) {
				var k = Object.keys(d.expect)[0];
				if (k !== '') data = (data && data[k] !== undefined) ? data[k] : d.expect[k];
			}
			return data;
		});
	};
} };

/* --- uci: sections of a real file, changes staged here until save --------------------------- */
var uci = {
	state: {}, n: 0,
	load: function(conf) {
		if (uci.state[conf]) return Promise.resolve(conf);
		return fetch('/uci/' + conf).then(function(r) { return r.json(); }).then(function(list) {
			uci.state[conf] = list;
			return conf;
		});
	},
	sections: function(conf, type) {
		return (uci.state[conf] || []).filter(function(s) { return !type || s['.type'] == type; });
	},
	find: function(conf, sid) {
		return (uci.state[conf] || []).filter(function(s) { return s['.name'] == sid; })[0];
	},
	get: function(conf, sid, opt) {
		var s = uci.find(conf, sid);
		return s ? (opt == null ? s : s[opt]) : null;
	},
	set: function(conf, sid, opt, val) {
		var s = uci.find(conf, sid);
		if (!s) return;
		if (val == null || val === '' || (Array.isArray(val) && !val.length)) delete s[opt];
		else s[opt] = Array.isArray(val) ? val.slice() : String(val);
	},
	unset: function(conf, sid, opt) { uci.set(conf, sid, opt, null); },
	add: function(conf, type, name) {
		var sid = name || ('cfg' + (0x100000 + (++uci.n) * 4099).toString(16));
		uci.state[conf].push({ '.name': sid, '.type': type, '.anonymous': !name });
		return sid;
	},
	remove: function(conf, sid) {
		uci.state[conf] = uci.state[conf].filter(function(s) { return s['.name'] != sid; });
	},
	save: function() {
		return fetch('/uci-save', { method: 'POST', body: JSON.stringify(uci.state) }).then(function(r) { if (!r.ok) throw new Error('save'); });
	},
	apply: function() {
		return fetch('/uci-apply', { method: 'POST' }).then(function(r) { if (!r.ok) throw new Error('apply'); });
	}
};

/* --- ui ----------------------------------------------------------------------------------------- */
var ui = {
	addNotification: function(title, children, cls) {
		var n = E('div', { 'class': 'alert-message ' + (cls || '') }, [ title ? E('h4', {}, title) : '', children ]);
		document.getElementById('notifications').appendChild(n);
		return n;
	},
	showModal: function(title, children) {
		var m = document.getElementById('modal');
		m.innerHTML = '';
		append(m, [ E('h4', {}, title), E('div', { 'class': 'modal-body' }, children) ]);
		m.style.display = 'block';
		return m;
	},
	hideModal: function() { var m = document.getElementById('modal'); m.style.display = 'none'; m.innerHTML = ''; },
	createHandlerFn: function(self, fn) {
		var args = [].slice.call(arguments, 2);
		var f = typeof fn == 'string' ? self[fn] : fn;
		return function(ev) { return f.apply(self, args.concat([ev])); };
	},
	changes: { apply: function(checked) {
		return uci.apply().then(function() {
			window.__moatApplied = (window.__moatApplied || 0) + 1;
			ui.addNotification(null, E('p', {}, 'Configuration changes applied.'), 'info');
		});
	} }
};

/* --- poll ------------------------------------------------------------------------------------- */
var poll = { fns: [], add: function(fn, interval) {
	var busy = false;
	setInterval(function() { if (busy) return; busy = true; Promise.resolve(fn()).finally(function() { busy = false; }); }, (interval || 5) * 1000);
} };

/* --- form: Map, TypedSection, GridSection, NamedSection; Value, Flag, ListValue, DynamicList ---- */
var DATATYPES = {
	macaddr: [ /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/, 'valid MAC address' ],
	ipaddr: [ /^(\d{1,3}(\.\d{1,3}){3}|[0-9a-fA-F:]*:[0-9a-fA-F:.]*)$/, 'valid IP address' ],
	port: [ /^([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$/, 'valid port value' ],
	uinteger: [ /^[0-9]+$/, 'positive integer value' ]
};

var AbstractValue = Class.extend({
	__init__: function(section, option, title, description) {
		this.section = section; this.map = section.map; this.option = option; this.title = title || option;
		this.description = description; this.deps = []; this.keylist = []; this.vallist = []; this.widgets = {};
	},
	depends: function(k, v) { var d = {}; d[k] = v; this.deps.push(d); },
	value: function(k, label) { this.keylist.push(k); this.vallist.push(label || k); },
	cfgvalue: function(sid) { var v = this.map.data.get(this.map.config, sid, this.option); return v == null ? this.default : v; },
	formvalue: function(sid) {
		var w = this.widgets[sid];
		if (!w) return this.cfgvalue(sid);
		if (this.isFlag) return w.checked ? '1' : '0';
		if (this.isList) return w.value.split(/[\s,]+/).filter(function(x) { return x; });
		return w.value;
	},
	isActive: function(sid) {
		var self = this;
		if (!this.deps.length) return true;
		return this.deps.some(function(d) {
			return Object.keys(d).every(function(k) { return self.section.formvalue(sid, k) == d[k]; });
		});
	},
	check: function(sid) {
		var v = this.formvalue(sid), vals = Array.isArray(v) ? v : [ v ];
		if (this.datatype && DATATYPES[this.datatype])
			for (var i = 0; i < vals.length; i++)
				if (vals[i] != null && vals[i] !== '' && !DATATYPES[this.datatype][0].test(vals[i]))
					return 'Expecting: ' + DATATYPES[this.datatype][1];
		if (this.validate) {
			var r = this.validate(sid, Array.isArray(v) ? v.join(' ') : v);
			if (r !== true) return r;
		}
		return true;
	},
	renderWidget: function(sid) {
		var cur = this.cfgvalue(sid), w, self = this;
		if (this.isFlag) {
			w = E('input', { 'type': 'checkbox', 'name': this.option });
			w.checked = (cur == null ? this.default : cur) == '1';
		} else if (this.keylist.length) {
			w = E('select', { 'name': this.option }, this.keylist.map(function(k, i) { return E('option', { 'value': k }, self.vallist[i]); }));
			w.value = cur == null ? (this.default || this.keylist[0]) : cur;
		} else {
			w = E('input', { 'type': 'text', 'name': this.option });
			w.value = cur == null ? '' : (Array.isArray(cur) ? cur.join(' ') : cur);
		}
		this.widgets[sid] = w;
		return w;
	},
	write: function(sid) {
		if (!this.isActive(sid)) { this.map.data.unset(this.map.config, sid, this.option); return; }
		var v = this.formvalue(sid);
		this.map.data.set(this.map.config, sid, this.option, v);
	}
});
var Value = AbstractValue.extend({});
var ListValue = AbstractValue.extend({});
var Flag = AbstractValue.extend({ isFlag: true });
var DynamicList = AbstractValue.extend({ isList: true });

var TypedSection = Class.extend({
	__init__: function(map, type, title) { this.map = map; this.sectiontype = type; this.title = title; this.children = []; },
	option: function(cls, name, title, descr) { var o = new cls(this, name, title, descr); this.children.push(o); return o; },
	cfgsections: function() { return this.map.data.sections(this.map.config, this.sectiontype).map(function(s) { return s['.name']; }); },
	formvalue: function(sid, name) { var o = this.children.filter(function(c) { return c.option == name; })[0]; return o ? o.formvalue(sid) : null; },
	/* Validate and write the options of `sid` shown by `filter`; returns the first error or null. */
	commit: function(sid, filter) {
		var opts = this.children.filter(filter), i, r;
		for (i = 0; i < opts.length; i++)
			if (opts[i].isActive(sid) && (r = opts[i].check(sid)) !== true)
				return opts[i].title + ': ' + r;
		opts.forEach(function(o) { if (o.widgets[sid]) o.write(sid); });
		return null;
	},
	save: function() {
		var self = this, err = null;
		this.cfgsections().forEach(function(sid) { err = err || self.commit(sid, function(o) { return o.editable; }); });
		return err;
	},
	render: function() {
		var self = this, sids = this.cfgsections();
		var cols = this.children.filter(function(o) { return !o.modalonly; });
		var rows = sids.map(function(sid) {
			return E('tr', { 'class': 'tr cbi-section-table-row', 'data-sid': sid }, (self.anonymous ? [] : [ E('td', { 'class': 'td' }, E('strong', {}, sid)) ]).concat(cols.map(function(o) {
				if (o.editable) return E('td', { 'class': 'td' }, o.renderWidget(sid));
				var v = o.cfgvalue(sid);
				if (o.keylist.length) { var i = o.keylist.indexOf(v); v = i >= 0 ? o.vallist[i] : v; }
				return E('td', { 'class': 'td', 'data-name': o.option }, Array.isArray(v) ? v.join(', ') : (v == null ? '-' : v));
			})).concat([ E('td', { 'class': 'td cbi-section-actions' }, [
				E('button', { 'class': 'cbi-button cbi-button-edit', 'click': function() { self.renderMoreOptionsModal(sid); } }, 'Edit'),
				this.addremove ? E('button', { 'class': 'cbi-button cbi-button-remove', 'click': function() {
					self.map.data.remove(self.map.config, sid); self.map.reset();
				} }, 'Delete') : ''
			]) ]));
		}, this);
		var add = '';
		if (this.addremove) {
			var nameInput = this.anonymous ? '' : E('input', { 'type': 'text', 'class': 'cbi-section-create-name', 'placeholder': 'name' });
			add = E('div', { 'class': 'cbi-section-create' }, [ nameInput, E('button', { 'class': 'cbi-button cbi-button-add', 'click': function() {
				if (nameInput && !/^[A-Za-z0-9_]+$/.test(nameInput.value)) return;
				var sid = self.map.data.add(self.map.config, self.sectiontype, nameInput ? nameInput.value : undefined);
				self.addedSection = sid;
				self.renderMoreOptionsModal(sid);
			} }, 'Add') ]);
		}
		return E('div', { 'class': 'cbi-section', 'id': 'cbi-' + this.map.config + '-' + this.sectiontype }, [
			this.title ? E('h3', {}, this.title) : '',
			E('table', { 'class': 'table cbi-section-table' }, [
				E('tr', { 'class': 'tr table-titles' }, (this.anonymous ? [] : [ E('th', { 'class': 'th' }, 'Name') ]).concat(cols.map(function(o) { return E('th', { 'class': 'th' }, o.title); })).concat([ E('th', { 'class': 'th' }, '') ]))
			].concat(rows.length ? rows : [ E('tr', { 'class': 'tr placeholder' }, E('td', { 'class': 'td' }, 'This section contains no values yet')) ])),
			add
		]);
	},
	renderMoreOptionsModal: function(sid) {
		var self = this, err = E('div', { 'class': 'cbi-modal-error', 'style': 'color:#c00' });
		var fields = this.children.map(function(o) {
			var row = E('div', { 'class': 'cbi-value', 'data-name': o.option }, [ E('label', { 'class': 'cbi-value-title' }, o.title), ' ', o.renderWidget(sid) ]);
			return row;
		});
		var refresh = function() { self.children.forEach(function(o, i) { fields[i].style.display = o.isActive(sid) ? '' : 'none'; }); };
		fields.forEach(function(f) { f.addEventListener('change', refresh); });
		var title = typeof this.modaltitle == 'function' ? this.modaltitle(sid) : (this.modaltitle || this.title);
		ui.showModal(title, [ E('div', { 'class': 'cbi-map' }, fields), err, E('div', { 'class': 'right' }, [
			E('button', { 'class': 'cbi-button cbi-button-neutral', 'click': function() {
				if (self.addedSection == sid) self.map.data.remove(self.map.config, sid);
				self.addedSection = null; ui.hideModal(); self.map.reset();
			} }, 'Dismiss'),
			E('button', { 'class': 'cbi-button cbi-button-positive important', 'click': function() {
				var e = self.commit(sid, function() { return true; });
				if (e) { err.textContent = e; return; }
				self.addedSection = null; ui.hideModal(); self.map.reset();
			} }, 'Save')
		]) ]);
		refresh();
		return Promise.resolve();
	}
});
var GridSection = TypedSection.extend({});
var NamedSection = TypedSection.extend({
	__init__: function(map, sid, type, title) { TypedSection.prototype.__init__.call(this, map, type, title); this.sid = sid; },
	cfgsections: function() { return [ this.sid ]; }
});

var FormMap = Class.extend({
	__init__: function(config, title, description) { this.config = config; this.title = title; this.description = description; this.data = uci; this.children = []; },
	section: function(cls) { var a = [].slice.call(arguments, 1); var s = Object.create(cls.prototype); cls.prototype.__init__.apply(s, [ this ].concat(a)); this.children.push(s); return s; },
	renderContents: function() {
		return E('div', { 'class': 'cbi-map', 'id': 'cbi-' + this.config }, [
			this.title ? E('h2', {}, this.title) : '', this.description ? E('div', { 'class': 'cbi-map-descr' }, this.description) : ''
		].concat(this.children.map(function(s) { return s.render(); })));
	},
	render: function() {
		var self = this;
		return this.data.load(this.config).then(function() { self.node = self.renderContents(); self.node.__map = self; return self.node; });
	},
	reset: function() {
		var n = this.renderContents(); n.__map = this;
		if (this.node && this.node.parentNode) this.node.parentNode.replaceChild(n, this.node);
		this.node = n;
	},
	save: function() {
		var err = null;
		this.children.forEach(function(s) { err = err || s.save(); });
		if (err) { ui.addNotification(null, E('p', {}, err), 'error'); return Promise.reject(new Error(err)); }
		return this.data.save();
	}
});

var form = { Map: FormMap, TypedSection: TypedSection, GridSection: GridSection, NamedSection: NamedSection,
	Value: Value, ListValue: ListValue, Flag: Flag, DynamicList: DynamicList };

/* --- view ------------------------------------------------------------------------------------ */
var View = Class.extend({
	__init__: function() {
		var self = this, vp = document.getElementById('view');
		vp.textContent = 'Loading view…';
		return Promise.resolve(this.load()).then(function(d) { return self.render(d); }).then(function(nodes) {
			vp.innerHTML = '';
			append(vp, nodes);
			append(vp, self.addFooter());
			window.__moatRendered = true;
		}).catch(function(e) { vp.textContent = 'Error: ' + e; window.__moatError = String(e.stack || e); });
	},
	load: function() {},
	render: function() {},
	handleSave: function() {
		return Promise.all([].map.call(document.querySelectorAll('#view .cbi-map'), function(n) { return n.__map ? n.__map.save() : null; }));
	},
	handleSaveApply: function(ev, mode) { return this.handleSave(ev).then(function() { return ui.changes.apply(mode == '0'); }); },
	handleReset: function() { location.reload(); },
	addFooter: function() {
		var self = this, b = [];
		if (this.handleSaveApply) b.push(E('button', { 'class': 'cbi-button cbi-button-apply', 'id': 'save-apply', 'click': function(ev) { return self.handleSaveApply(ev, '0'); } }, 'Save & Apply'));
		if (this.handleSave) b.push(E('button', { 'class': 'cbi-button cbi-button-save', 'click': function(ev) { return self.handleSave(ev); } }, 'Save'));
		if (this.handleReset) b.push(E('button', { 'class': 'cbi-button cbi-button-reset', 'click': function(ev) { return self.handleReset(ev); } }, 'Reset'));
		return b.length ? E('div', { 'class': 'cbi-page-actions' }, b) : '';
	}
});

var builtins = { baseclass: Class, view: View, form: form, rpc: rpc, uci: uci, ui: ui, poll: poll };
Object.keys(builtins).forEach(function(k) { L.modules[k] = Promise.resolve(builtins[k]); });

window.L = L; window.E = E; window._ = _;

/* ?view=moat/devices renders a view; ?include=status/include/75_moat renders a status include. */
window.addEventListener('DOMContentLoaded', function() {
	var q = new URLSearchParams(location.search);
	if (q.get('view')) { L.require('view.' + q.get('view').replace(/\//g, '.')).catch(function(e) { window.__moatError = String(e.stack || e); }); return; }
	if (q.get('include')) {
		L.require('view.' + q.get('include').replace(/\//g, '.')).then(function(inc) {
			return Promise.resolve(inc.load()).then(function(d) { return inc.render(d); }).then(function(n) {
				var vp = document.getElementById('view');
				vp.innerHTML = '';
				append(vp, [ E('h3', {}, inc.title), n ]);
				window.__moatRendered = true;
			});
		}).catch(function(e) { window.__moatError = String(e.stack || e); });
	}
});
})();
