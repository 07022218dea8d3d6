/* warranty storefront embed: one file, no build step, no other host, strict-CSP safe.

<script src="https://WARRANTY-HOST/embed.js" data-key="pk_..." [data-lang="ja|en"] defer></script>

Placements, found by data attributes (see README "Storefront embed"):
  [data-warranty-product]  data-sku | data-category + data-price, data-title,
                           data-quantity-input="#qty", data-add-to-cart="#form"
  [data-warranty-cart]     holding [data-warranty-cart-item] with data-line-id, data-sku,
                           data-price, data-quantity, data-title
  [data-warranty-order]    ="ord_..." on the order-confirmation page
  [data-warranty-plans-total]  receives the plans' total
API: Warranty.ready, refresh(), cart([items]), checkout({order_ref, customer_email,
success_url, cancel_url}), visitorId(), arm(). Money is in minor units throughout. */
(() => {
  'use strict';
  if (window.Warranty && window.Warranty.version) return;
  // The API is on the origin this script came from, which is the store's own only when the
  // service shares its host: a store on its own domain lists its origin in the service's
  // WARRANTY_ALLOWED_ORIGINS (CORS). currentScript is unset when a tag manager evaluates the
  // script's text instead of loading it; then the tag that carries data-key is ours.
  const me = document.currentScript || document.querySelector('script[src*="/embed.js"][data-key]');
  const BASE = new URL(me.src, location.href).origin;
  const KEY = me.dataset.key || '';
  const LANG = /^ja/i.test(me.dataset.lang || document.documentElement.lang || '') ? 'ja' : 'en';
  const T = {
    en: {
      sep: ', ', legend: 'Protect your purchase', none: 'No protection', standard: 'Breakdown protection',
      accident: 'Accident & breakdown protection', years: (n) => n + (n > 1 ? ' years' : ' year'),
      months: (n) => n + ' months', each: 'per unit', units: (n) => 'Covers ' + n + (n > 1 ? ' units' : ' unit'),
      modalTitle: 'Add protection?', modalText: (t) => 'Protect your ' + (t || 'product') + ' beyond the manufacturer\'s warranty.',
      noThanks: 'No thanks', close: 'Close', add: (p, m) => 'Add ' + p + ' for ' + m,
      protectedBy: (p) => 'Protected: ' + p, remove: 'Remove', removeLabel: (p, t) => 'Remove ' + p + ' from ' + t,
      count: 'Plans', repriced: (p, m) => p + ': now ' + m, dropped: (t) => 'Protection removed: ' + t + ' is no longer in the cart',
      gone: (t) => 'Protection for ' + t + ' is no longer offered and was removed',
      after: 'Add protection to your order', addUnits: (p, m, n) => 'Add ' + p + ' for ' + m + ' × ' + n,
      added: (p) => p + ' added', removed: (p) => p + ' removed',
      cPrice: (m, t) => 'Price (tax included): ' + m + (t ? ' (tax ' + t + ')' : ''),
      cTerm: (a, b, n) => 'Term: ' + a + ' to ' + b + ' (' + n + ' months)',
      cBreakdown: (d) => 'Breakdown cover starts: ' + d + ' (after the manufacturer\'s warranty)',
      cAccident: (d) => 'Accidental damage cover starts: ' + d,
      cWaiting: (d) => 'No claims for incidents before ' + d + ' (waiting period)',
      cCancel: (n, fee) => 'Cancellation: full refund within ' + n + ' days of purchase with no claim paid; later, the unused days pro rata, less a fee of ' + fee + ' and claims paid',
      cRepair: 'Claims are settled by repair or replacement only, never in cash',
      cTerms: (v) => 'Terms (version ' + v + ')',
    },
    ja: {
      sep: ' ', legend: '延長保証を付ける', none: '保証なし', standard: '延長保証（故障）',
      accident: '延長保証（破損・故障）', years: (n) => n + '年', months: (n) => n + 'か月',
      each: '1台あたり', units: (n) => n + '台分を保証',
      modalTitle: '延長保証を追加しますか？', modalText: (t) => (t || '商品') + 'をメーカー保証の後も守ります。',
      noThanks: '追加しない', close: '閉じる', add: (p, m) => p + 'を追加（' + m + '）',
      protectedBy: (p) => '保証付き：' + p, remove: '削除', removeLabel: (p, t) => t + 'の' + p + 'を削除',
      count: '保証の数', repriced: (p, m) => p + '：' + m + 'に変わりました', dropped: (t) => t + 'がカートにないため保証を外しました',
      gone: (t) => t + 'の保証は提供されなくなったため外しました',
      after: 'ご注文に延長保証を追加', addUnits: (p, m, n) => p + 'を追加（' + m + ' × ' + n + '）',
      added: (p) => p + 'を追加しました', removed: (p) => p + 'を外しました',
      cPrice: (m, t) => '価格（税込）：' + m + (t ? '（うち消費税 ' + t + '）' : ''),
      cTerm: (a, b, n) => '保証期間：' + a + '〜' + b + '（' + n + 'か月）',
      cBreakdown: (d) => '故障の補償開始：' + d + '（メーカー保証の終了後）',
      cAccident: (d) => '事故の補償開始：' + d,
      cWaiting: (d) => d + 'より前の故障・事故は対象外（待機期間）',
      cCancel: (n, fee) => '解約：購入から' + n + '日以内で保証のお支払いがなければ全額返金。それ以降は残り日数の日割りで返金（解約手数料' + fee + 'と保証のお支払い額を差し引き）',
      cRepair: '保証は修理または交換で履行し、現金でのお支払いはありません',
      cTerms: (v) => '保証規約（バージョン ' + v + '）',
    },
  }[LANG];

  // --- small helpers ---------------------------------------------------------------
  const h = (tag, attrs, ...kids) => {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'text') el.textContent = v;
      else el.setAttribute(k, v === true ? '' : v);
    }
    el.append(...kids.filter((k) => k != null));
    return el;
  };
  const int = (v) => (/^\d+$/.test(String(v || '').trim()) ? parseInt(v, 10) : null);
  const local = {
    get: (k) => { try { return JSON.parse(localStorage.getItem('warranty.' + k)); } catch (e) { return null; } },
    set: (k, v) => { try { localStorage.setItem('warranty.' + k, JSON.stringify(v)); } catch (e) { /* private mode */ } },
  };
  const money = (amount, currency) => {
    const fmt = new Intl.NumberFormat(LANG === 'ja' ? 'ja-JP' : 'en-US', { style: 'currency', currency: currency.toUpperCase() });
    return fmt.format(amount / 10 ** fmt.resolvedOptions().maximumFractionDigits);
  };
  // The final-confirmation items of one offer: price with tax, term, when cover starts,
  // the cancellation conditions and a link to the terms (version) it is sold under.
  const confirmItems = (o, terms) => {
    if (!o || !terms) return null;
    const li = (text) => h('li', { text });
    const link = o.terms_url ? h('a', { href: o.terms_url + '?lang=' + LANG, target: '_blank', rel: 'noopener', class: 'wty-terms', text: T.cTerms(o.terms_version) }) : null;
    return h('ul', { class: 'wty-confirm', 'data-plan': o.plan_code },
      li(T.cPrice(money(o.price_with_tax != null ? o.price_with_tax : o.price, o.currency), o.tax ? money(o.tax, o.currency) : '')),
      li(T.cTerm(o.term_start, o.term_end, o.term_months)),
      li(T.cBreakdown(o.breakdown_cover_start)),
      o.accident_cover_start ? li(T.cAccident(o.accident_cover_start)) : null,
      o.waiting_until ? li(T.cWaiting(o.waiting_until)) : null,
      li(T.cCancel(terms.free_look_days, money(terms.cancellation_fee, o.currency))),
      terms.repair_only ? li(T.cRepair) : null,
      link ? h('li', {}, link) : null);
  };
  const planName = (o) => T[o.coverage] + T.sep + (o.term_months % 12 ? T.months(o.term_months) : T.years(o.term_months / 12));
  let uid = 0;
  const nextId = () => 'wty-' + (++uid);

  // --- visitor, arm, events --------------------------------------------------------
  // The visitor id is issued and signed by the service (the assignment call): kept in
  // localStorage and a first-party cookie, sent back each time; an id the service did not
  // sign (an old or made-up one) is replaced by a new one in the answer.
  const storedVisitor = () => {
    const id = local.get('vid') || (document.cookie.match(/(?:^|; )wty_vid=([\w-]+)/) || [])[1];
    return /^[\w-]{8,64}$/.test(id || '') ? id : null;
  };
  const keepVisitor = (id) => {
    local.set('vid', id);
    document.cookie = 'wty_vid=' + id + '; path=/; max-age=31536000; samesite=lax';
  };
  let VID = storedVisitor();
  let ARM = null;
  let SHOW = false;

  const url = (path) => BASE + '/api/v1' + path + (path.includes('?') ? '&' : '?') + 'key=' + encodeURIComponent(KEY);
  const api = async (method, path, body) => {
    const res = await fetch(url(path), {
      method, credentials: 'omit', headers: body ? { 'Content-Type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) {
      const err = new Error((data.error && data.error.message) || 'HTTP ' + res.status);
      Object.assign(err, { status: res.status, code: data.error && data.error.code, details: data.error && data.error.details });
      throw err;
    }
    return data;
  };

  const queue = [];
  const seen = new Set();
  let timer = null;
  const flush = (beacon) => {
    clearTimeout(timer);
    timer = null;
    while (queue.length) {
      const body = JSON.stringify({ visitor_id: VID, events: queue.splice(0, 100) });
      // text/plain: no preflight, and sendBeacon can send it as the page goes away.
      if (beacon && navigator.sendBeacon && navigator.sendBeacon(url('/events'), new Blob([body], { type: 'text/plain' }))) continue;
      fetch(url('/events'), { method: 'POST', body, keepalive: true, credentials: 'omit', headers: { 'Content-Type': 'text/plain' } }).catch(() => {});
    }
  };
  const track = (type, data, once) => {
    if (!ARM) return;
    if (once) {
      if (seen.has(once)) return;
      seen.add(once);
    }
    const event = { type, at: Date.now() };
    for (const [k, v] of Object.entries(data)) if (v != null && v !== '') event[k] = v;
    queue.push(event);
    if (queue.length >= 20) flush();
    else if (!timer) timer = setTimeout(flush, 2000);
  };
  addEventListener('pagehide', () => flush(true));
  document.addEventListener('visibilitychange', () => document.visibilityState === 'hidden' && flush(true));
  const eventOf = (placement, prod, res, offer) => ({
    placement, sku: prod.sku, category: (res && res.warranty_category) || prod.category,
    price: prod.price, plan_code: offer && offer.plan_code, plan_price: offer && offer.price,
  });
  const exposed = (placement, prod, res) => {
    track('exposure', eventOf(placement, prod, res), 'x|' + placement + '|' + prod.sku);
    if (SHOW) for (const o of res.offers) track('offer_viewed', eventOf(placement, prod, res, o), 'v|' + placement + '|' + prod.sku + '|' + o.plan_code + '|' + o.price);
  };

  // --- announcements for screen readers ----------------------------------------------
  let live = null;
  const announce = (text) => {
    if (!live) document.body.append(live = h('div', { class: 'wty-sr', role: 'status', 'aria-live': 'polite' }));
    live.textContent = '';
    setTimeout(() => { live.textContent = text; }, 50);
  };

  // --- offers, fetched in batches and cached for a few minutes -------------------------
  const offerCache = new Map();
  const adhocSkus = new Set();
  const itemKey = (p) => (p.sku ? 's:' + p.sku : 'c:' + p.category + ':' + p.price + ':' + (p.months || ''));
  const offersFor = (products) => {
    const now = Date.now();
    const want = [];
    for (const p of products) {
      const k = itemKey(p);
      const hit = offerCache.get(k);
      if ((!hit || hit.until < now) && !want.some((w) => itemKey(w) === k)) want.push(p);
    }
    for (let i = 0; i < want.length; i += 50) {
      const chunk = want.slice(i, i + 50);
      const items = chunk.map((p) => (p.sku ? { sku: p.sku } : { category: p.category, price: p.price, manufacturer_warranty_months: p.months || 12 }));
      const batch = api('POST', '/offers/batch', { items }).then((r) => r.results);
      chunk.forEach((p, j) => {
        const k = itemKey(p);
        // A sku the service's catalog lacks: offers for its category and price instead.
        const adhoc = (res) => (res && res.reason && res.reason.code === 'unknown_sku' && p.category && p.price != null
          ? api('POST', '/offers/batch', { items: [{ category: p.category, price: p.price, manufacturer_warranty_months: p.months || 12 }] })
            .then((r) => { adhocSkus.add(p.sku); return r.results[0]; })
          : res);
        const entry = { until: now + 300000, promise: batch.then((r) => adhoc(r[j])) };
        entry.promise.catch(() => offerCache.delete(k));
        offerCache.set(k, entry);
      });
    }
    return Promise.all(products.map((p) => offerCache.get(itemKey(p)).promise.catch(() => null)));
  };
  const productOf = (el) => {
    const d = el.dataset;
    return { sku: d.sku || null, category: d.category || null, price: int(d.price), months: int(d.manufacturerWarrantyMonths), title: d.title || '' };
  };

  // --- plan selections, kept per sku across pages ----------------------------------------
  const plans = () => local.get('plans') || {};
  const savePlans = (all) => {
    local.set('plans', all);
    const total = Object.values(all).reduce((sum, s) => sum + s.plan_price * (s.units || 0), 0);
    const cur = Object.values(all).map((s) => s.currency)[0];
    document.querySelectorAll('[data-warranty-plans-total]').forEach((el) => { el.textContent = cur ? money(total, cur) : ''; });
  };
  const choose = (prod, res, offer, placement, units) => {
    const all = plans();
    all[prod.sku] = {
      plan_code: offer.plan_code, offer_token: offer.offer_token, plan_price: offer.price, currency: offer.currency,
      coverage: offer.coverage, term_months: offer.term_months, placement, title: prod.title,
      quantity: null, units, price: prod.price, category: res.warranty_category,
    };
    savePlans(all);
    track('offer_selected', Object.assign(eventOf(placement, prod, res, offer), { quantity: units }));
    announce(T.added(planName(offer)));
  };
  const drop = (sku, placement, why) => {
    const all = plans();
    const s = all[sku];
    if (!s) return;
    delete all[sku];
    savePlans(all);
    track('offer_removed', { placement, sku, category: s.category, price: s.price, plan_code: s.plan_code, plan_price: s.plan_price });
    announce(why || T.removed(planName(s)));
  };
  // A chosen plan follows the offers of the moment: new token, new price, or gone.
  const refreshChoice = (prod, res, placement) => {
    const all = plans();
    const s = all[prod.sku];
    if (!s || !res) return s;
    const o = res.offers.find((x) => x.plan_code === s.plan_code);
    if (!o) {
      drop(prod.sku, placement, T.gone(prod.title || prod.sku));
      return null;
    }
    if (o.price !== s.plan_price) announce(T.repriced(planName(o), money(o.price, o.currency)));
    Object.assign(s, { offer_token: o.offer_token, plan_price: o.price, price: prod.price });
    savePlans(all);
    return s;
  };
  const slot = (el, cls) => el.querySelector(':scope > .' + cls) || el.appendChild(h('div', { class: cls }));

  // --- product page: a radio group next to add-to-cart, and the add-to-cart modal ----------
  const products = new WeakMap();
  const quantityOf = (el) => {
    const input = el.dataset.quantityInput && document.querySelector(el.dataset.quantityInput);
    return Math.max(1, int(input && input.value) || 1);
  };
  const renderProduct = async (el) => {
    const state = products.get(el);
    const gen = ++state.gen;
    const prod = productOf(el);
    const res = (await offersFor([prod]))[0];
    if (gen !== state.gen) return;
    const box = slot(el, 'wty-product');
    box.replaceChildren();
    state.prod = prod;
    state.res = res && res.offers.length ? res : null;
    box.hidden = !(state.res && SHOW);
    if (!state.res) return;
    exposed('product_page', prod, res);
    if (!SHOW) return;
    const before = state.prices;
    state.prices = res.offers.map((o) => o.plan_code + o.price).join();
    const chosen = refreshChoice(prod, res, 'product_page');
    const name = nextId();
    const radio = (offer) => {
      const id = nextId();
      const input = h('input', {
        type: 'radio', name, id, value: offer ? offer.plan_code : '', checked: offer ? !!chosen && chosen.plan_code === offer.plan_code : !chosen,
        onchange: () => (offer ? choose(prod, res, offer, 'product_page', quantityOf(el)) : drop(prod.sku, 'product_page')),
        // An explicit "no protection" (even re-clicked) is not asked again in the modal.
        onclick: () => { state.declined = !offer; },
      });
      const label = offer
        ? h('label', { for: id }, h('span', { class: 'wty-name', text: planName(offer) }), h('span', { class: 'wty-price', text: money(offer.price, offer.currency) + ' ' + T.each }))
        : h('label', { for: id, text: T.none });
      return h('div', { class: 'wty-option' }, input, label);
    };
    const note = h('p', { class: 'wty-note', text: T.units(quantityOf(el)) });
    state.note = note;
    // The chosen plan's final-confirmation items, under the choice (none: nothing).
    const confirm = h('div', { class: 'wty-confirm-box' });
    const showConfirm = () => {
      const picked = box.querySelector('input[type=radio]:checked');
      const offer = picked && res.offers.find((o) => o.plan_code === picked.value);
      confirm.replaceChildren(...[confirmItems(offer, res.terms)].filter(Boolean));
    };
    const fieldset = h('fieldset', { class: 'wty-fieldset', onchange: showConfirm }, h('legend', { text: T.legend }), radio(null), ...res.offers.map(radio), note);
    box.append(fieldset, confirm);
    showConfirm();
    if (before && before !== state.prices) {
      announce(res.offers.map((o) => T.repriced(planName(o), money(o.price, o.currency))).join('. '));
    }
  };
  const openModal = (prod, res, done) => {
    const opener = document.activeElement;
    const title = nextId();
    let finished = false;
    const finish = (offer) => {
      if (finished) return;
      finished = true;
      if (offer) choose(prod, res, offer, 'add_to_cart_modal', prod.units);
      dlg.close();
      dlg.remove();
      if (opener && opener.focus) opener.focus();
      done(offer);
    };
    const dlg = h('dialog', { class: 'wty-modal', 'aria-modal': 'true', 'aria-labelledby': title },
      h('button', { type: 'button', class: 'wty-close', 'aria-label': T.close, text: '×', onclick: () => finish(null) }),
      h('h2', { id: title, text: T.modalTitle }),
      h('p', { text: T.modalText(prod.title) }),
      h('div', { class: 'wty-choices' }, ...res.offers.map((o) => h('div', { class: 'wty-choice' },
        h('button', { type: 'button', class: 'wty-add', onclick: () => finish(o), text: T.add(planName(o), money(o.price, o.currency)) }),
        confirmItems(o, res.terms)))),
      h('button', { type: 'button', class: 'wty-decline', text: T.noThanks, onclick: () => finish(null) }));
    // Esc: the browser fires cancel; we close ourselves so focus returns and the cart proceeds.
    dlg.addEventListener('cancel', (e) => { e.preventDefault(); finish(null); });
    dlg.addEventListener('keydown', (e) => {
      if (e.key !== 'Tab') return;
      const f = dlg.querySelectorAll('button');
      const first = f[0];
      const last = f[f.length - 1];
      if (e.shiftKey && document.activeElement === first) { e.preventDefault(); last.focus(); }
      else if (!e.shiftKey && document.activeElement === last) { e.preventDefault(); first.focus(); }
    });
    document.body.append(dlg);
    dlg.showModal();
    dlg.querySelector('.wty-add').focus();
    exposed('add_to_cart_modal', prod, res);
  };
  const bindProduct = (el) => {
    if (products.has(el)) return renderProduct(el);
    const state = { gen: 0 };
    products.set(el, state);
    new MutationObserver(() => renderProduct(el)).observe(el, { attributes: true, attributeFilter: ['data-sku', 'data-price', 'data-category'] });
    const input = el.dataset.quantityInput && document.querySelector(el.dataset.quantityInput);
    if (input) {
      input.addEventListener('input', () => {
        const q = quantityOf(el);
        if (state.note) state.note.textContent = T.units(q);
        const all = plans();
        if (state.prod && all[state.prod.sku]) { all[state.prod.sku].units = q; savePlans(all); }
      });
    }
    const form = el.dataset.addToCart && document.querySelector(el.dataset.addToCart);
    if (form) {
      let passing = false;
      form.addEventListener('submit', (e) => {
        if (passing || !SHOW || !state.res || state.declined || plans()[state.prod.sku]) return;
        e.preventDefault();
        openModal(Object.assign({ units: quantityOf(el) }, state.prod), state.res, () => {
          passing = true;
          form.requestSubmit();
          passing = false;
        });
      });
    }
    return renderProduct(el);
  };

  // --- cart: offers for items without a plan; plans follow their products ------------------
  const cartItems = (root) => Array.from(root.querySelectorAll('[data-warranty-cart-item]'), (el, i) => Object.assign(productOf(el), {
    el, line_id: el.dataset.lineId || 'p' + (i + 1), quantity: Math.max(1, int(el.dataset.quantity) || 1),
  }));
  const balance = (items) => {
    const bySku = new Map(items.map((it) => [it.sku, it]));
    for (const [sku, s] of Object.entries(plans())) if (!bySku.has(sku)) drop(sku, 'cart', T.dropped(s.title || sku));
    const all = plans();
    for (const [sku, s] of Object.entries(all)) {
      const q = bySku.get(sku).quantity;
      if (s.quantity != null && s.quantity >= q) s.quantity = null; // null: one plan per unit
      s.units = s.quantity || q;
    }
    savePlans(all);
  };
  const renderCartItem = (it, res, rerender) => {
    const box = slot(it.el, 'wty-cart');
    box.replaceChildren();
    box.hidden = !(res && res.offers.length && SHOW);
    if (!res || !res.offers.length) return;
    exposed('cart', it, res);
    if (!SHOW) return;
    const s = refreshChoice(it, res, 'cart');
    const title = it.title || it.sku;
    if (!s) {
      box.append(...res.offers.map((o) => h('div', { class: 'wty-choice' }, h('button', {
        type: 'button', class: 'wty-add',
        onclick: () => { choose(it, res, o, 'cart', it.quantity); rerender(); },
        text: T.add(planName(o), money(o.price, o.currency)),
      }), confirmItems(o, res.terms))));
      return;
    }
    const id = nextId();
    const select = h('select', {
      id,
      onchange: () => {
        const all = plans();
        const q = int(select.value);
        all[it.sku].quantity = q === it.quantity ? null : q;
        all[it.sku].units = q;
        savePlans(all);
        announce(T.count + ': ' + q);
      },
    }, ...Array.from({ length: it.quantity }, (_, i) => h('option', { value: i + 1, text: String(i + 1), selected: i + 1 === s.units })));
    box.append(
      h('span', { class: 'wty-name', text: T.protectedBy(planName(s)) }),
      h('span', { class: 'wty-price', text: money(s.plan_price, s.currency) + ' ' + T.each }),
      h('label', { for: id, text: T.count }), select,
      h('button', { type: 'button', class: 'wty-remove', 'aria-label': T.removeLabel(planName(s), title), text: T.remove, onclick: () => { drop(it.sku, 'cart'); rerender(); } }),
      confirmItems(res.offers.find((o) => o.plan_code === s.plan_code), res.terms));
  };
  const renderCart = async (root) => {
    const items = cartItems(root);
    balance(items);
    const results = await offersFor(items);
    const rerender = () => renderCart(root);
    items.forEach((it, i) => renderCartItem(it, results[i], rerender));
    savePlans(plans());
  };
  const bindCart = (root) => {
    if (!root.wtyBound) {
      root.wtyBound = true;
      let pending = null;
      // Re-render when the store changes its items, not when we change our own blocks.
      const ours = (m) => {
        const t = m.target.nodeType === 1 ? m.target : m.target.parentElement;
        return (t && t.closest('.wty-cart')) || (m.type === 'childList' && [...m.addedNodes, ...m.removedNodes].every((n) => n.classList && n.classList.contains('wty-cart')));
      };
      new MutationObserver((muts) => {
        if (muts.every(ours)) return;
        clearTimeout(pending);
        pending = setTimeout(() => renderCart(root), 50);
      })
        .observe(root, { subtree: true, attributes: true, attributeFilter: ['data-quantity', 'data-sku', 'data-price'], childList: true });
    }
    return renderCart(root);
  };

  // --- the cart for checkout, and the hosted checkout ------------------------------------
  const cart = (items) => {
    const list = items
      ? items.map((it, i) => Object.assign({ line_id: 'p' + (i + 1) }, it, { price: it.unit_price != null ? it.unit_price : it.price }))
      : Array.from(document.querySelectorAll('[data-warranty-cart]')).flatMap(cartItems);
    const all = plans();
    const lines = list.map((it) => Object.assign({ type: 'product', line_id: it.line_id, sku: it.sku, quantity: it.quantity, unit_price: it.price },
      adhocSkus.has(it.sku) && { category: it.category, manufacturer_warranty_months: it.months || 12 }));
    if (SHOW) {
      for (const it of list) {
        const s = all[it.sku];
        if (s) lines.push({ type: 'plan', for_line: it.line_id, quantity: Math.min(s.quantity || it.quantity, it.quantity), offer_token: s.offer_token, placement: s.placement });
      }
    }
    return lines;
  };
  const go = (res, events) => {
    for (const ev of events) track('checkout_started', Object.assign(ev, { order_id: res.order_id }));
    flush();
    location.assign(res.checkout_url);
    return res;
  };
  const checkout = async (opts, retried) => {
    await ready; // the signed visitor id first, so the order is attributed to this visitor
    const lines = cart(opts.items);
    const body = { order_ref: opts.order_ref, customer_email: opts.customer_email, visitor_id: VID, lang: LANG, success_url: opts.success_url, cancel_url: opts.cancel_url, lines };
    let res;
    try {
      res = await api('POST', '/checkout/sessions', body);
    } catch (err) {
      // An offer that went stale (409 offer_stale: the price or the rules changed since),
      // expired or changed price: fetch fresh offers once and try again.
      if (!retried && (err.status === 409 || err.status === 422) && /^offer_/.test(err.code || '')) {
        offerCache.clear();
        await refresh();
        return checkout(opts, true);
      }
      throw err;
    }
    const all = plans();
    const plansFor = new Map(lines.filter((l) => l.type === 'plan').map((l) => [l.for_line, l]));
    return go(res, lines.filter((l) => l.type === 'product').map((l) => {
      const plan = plansFor.get(l.line_id);
      const s = plan && all[l.sku];
      return { placement: s ? s.placement : null, sku: l.sku, price: l.unit_price, quantity: l.quantity, plan_code: s && s.plan_code, plan_price: s && s.plan_price };
    }));
  };

  // --- after purchase: plans for the order's lines --------------------------------------------
  const renderOrder = async (el) => {
    const orderId = el.dataset.warrantyOrder;
    savePlans({});
    const box = slot(el, 'wty-after');
    box.hidden = true;
    let data;
    // The shopper may land here before Stripe's event marks the order paid: ask again.
    for (let tries = 0; !data; tries++) {
      try {
        data = await api('GET', '/orders/' + encodeURIComponent(orderId) + '/post-purchase-offers');
      } catch (err) {
        if (err.code !== 'order_not_paid' || tries > 20) return;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    box.replaceChildren();
    const open = data.lines.filter((l) => l.offers.length && l.quantity > l.covered_quantity);
    for (const line of open) exposed('post_purchase', { sku: line.sku, title: line.title }, { offers: line.offers });
    if (!SHOW || !open.length) return;
    box.hidden = false;
    box.append(h('h2', { text: T.after }));
    for (const line of open) {
      const n = line.quantity - line.covered_quantity;
      const prod = { sku: line.sku, title: line.title };
      box.append(h('div', { class: 'wty-line' }, h('p', { class: 'wty-name', text: line.title }), ...line.offers.map((o) => h('div', { class: 'wty-choice' }, h('button', {
        type: 'button', class: 'wty-add', text: T.addUnits(planName(o), money(o.price, o.currency), n),
        onclick: async (e) => {
          e.currentTarget.disabled = true;
          const ev = Object.assign(eventOf('post_purchase', prod, null, o), { quantity: n });
          track('offer_selected', ev);
          const res = await api('POST', '/checkout/post-purchase', {
            order_id: orderId, line_no: line.line_no, offer_token: o.offer_token, quantity: n, visitor_id: VID, lang: LANG,
            success_url: el.dataset.successUrl || location.href, cancel_url: el.dataset.cancelUrl || location.href,
          });
          go(res, [ev]);
        },
      }), confirmItems(o, data.terms)))));
    }
  };

  // --- start ----------------------------------------------------------------------------
  const refresh = () => Promise.all([
    ...Array.from(document.querySelectorAll('[data-warranty-product]'), bindProduct),
    ...Array.from(document.querySelectorAll('[data-warranty-cart]'), bindCart),
    ...Array.from(document.querySelectorAll('[data-warranty-order]'), renderOrder),
  ]);
  const ready = (async () => {
    try {
      const a = await api('GET', '/experiment/assignment' + (VID ? '?visitor_id=' + encodeURIComponent(VID) : ''));
      VID = a.visitor_id;
      keepVisitor(VID);
      ARM = a.arm;
      SHOW = a.show_offers;
    } catch (err) {
      SHOW = false; // no answer, no offers: the store works as if the embed were absent
    }
    if (document.readyState === 'loading') await new Promise((r) => document.addEventListener('DOMContentLoaded', r, { once: true }));
    if (!document.querySelector('link[href="' + BASE + '/embed.css"]')) document.head.append(h('link', { rel: 'stylesheet', href: BASE + '/embed.css' }));
    document.documentElement.classList.add('wty-' + (ARM || 'off'));
    await refresh();
  })();
  window.Warranty = { version: '1', ready, refresh, cart, checkout, visitorId: () => VID, arm: () => ARM, plans };
})();
