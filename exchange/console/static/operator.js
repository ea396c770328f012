// The operator's page: the live flow (GET /v1/ops/flow every few seconds: tiles, a bar chart of
// leads per minute drawn as inline SVG, pings per buyer with latency bars, queues) and a lead
// search that opens a lead's whole story: its trace (every campaign's reason code, explained,
// with bids and payouts), its routing to a team and its call. Reads only, through the JSON API
// with the session cookie. Values are put on the page as text, never as HTML.
"use strict";
(() => {
  const REFRESH_MS = 5000; // the live view's pace: one small query set per refresh
  const RETRY_MS = 10000; // after a failed refresh
  const CHART_BARS_MAX = 120; // wider windows fold several minutes into a bar
  const NAMES_FETCH_MAX = 30; // parties looked up one by one for a trace
  const SVG_NS = "http://www.w3.org/2000/svg";
  const LEAD_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  const $ = (id) => document.getElementById(id);

  const REASONS = JSON.parse($("reason-codes").textContent || "{}");
  const names = new Map(); // party id -> name: from the flow, then looked up for traces
  const currencies = new Map(); // vertical slug -> currency, from GET /v1/verticals
  let minutes = 60;
  let flowSeq = 0;
  let timer = null;
  let openSeq = 0;
  let lastFlow = null; // redrawn at a new width without asking again

  const api = (path) => window.Console.api("GET", path);

  const { el } = window.Console;

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    return node;
  }

  // -- formats ------------------------------------------------------------------------------

  const shortId = (id) => String(id).slice(-8); // ids are time-ordered: the tail differs
  const hhmm = (iso) => new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const when = (iso) => (iso ? new Date(iso).toLocaleString([], { dateStyle: "short", timeStyle: "medium" }) : "–");
  const count = (n) => new Intl.NumberFormat().format(n);

  function money(minor, currency) {
    if (minor === null || minor === undefined) return "–";
    const format = new Intl.NumberFormat(undefined, { style: "currency", currency: currency || "USD" });
    return format.format(minor / 10 ** format.resolvedOptions().maximumFractionDigits);
  }

  function ago(iso) {
    if (!iso) return "–";
    const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (seconds < 90) return `${seconds} s ago`;
    if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
    return `${Math.round(seconds / 3600)} h ago`;
  }

  // A reason code's meaning; templates (`filtered:<field>`) are filled with the code's tail.
  function explain(code) {
    if (!code) return "";
    if (REASONS[code]) return REASONS[code];
    for (const [template, text] of Object.entries(REASONS)) {
      const hole = template.indexOf("<");
      if (hole > 0 && code.startsWith(template.slice(0, hole))) {
        const name = template.slice(hole, template.indexOf(">") + 1);
        return text.replaceAll(name, code.slice(hole));
      }
    }
    return "";
  }

  function reason(code) {
    if (!code) return el("span", { class: "muted" }, "eligible, ranked (decided at the post)");
    const why = explain(code);
    return el("span", { class: "reason-cell" },
      el("code", { class: "reason" }, code), why ? el("span", { class: "why" }, why) : null);
  }

  function party(id) {
    if (!id) return el("span", { class: "muted" }, "–");
    return el("span", { "data-party": id, title: id }, names.get(String(id)) || shortId(id));
  }

  function problem(text) {
    $("problem").hidden = !text;
    $("problem").textContent = text || "";
  }

  function live(on, text) {
    $("live").className = on ? "live on" : "live off";
    $("live").textContent = text;
  }

  function rows(table, items, make, emptyId) {
    const body = table.querySelector("tbody");
    body.replaceChildren(...items.map(make));
    if (emptyId) {
      $(emptyId).hidden = items.length > 0;
      table.hidden = items.length === 0;
    }
  }

  // -- the flow -----------------------------------------------------------------------------

  function tiles(flow) {
    const t = flow.totals;
    $("kpi-received").textContent = count(t.received);
    $("kpi-per-minute").textContent = `${(t.received / flow.minutes).toFixed(1)} a minute`;
    $("kpi-sold-rate").textContent = `${(t.sold_rate_bps / 100).toFixed(1)}%`;
    $("kpi-sold").textContent = `${count(t.sold)} sold, ${count(t.unsold)} unsold`;
    const money_ = t.by_currency;
    $("kpi-price").textContent = money_.length
      ? money_.map((c) => money(c.average_price_minor, c.currency)).join(" · ") : "–";
    $("kpi-revenue").textContent = money_.length
      ? money_.map((c) => `${money(c.revenue_minor, c.currency)} over ${count(c.sales)} sales`).join(" · ")
      : "no sales";
    const pings = flow.buyers.reduce((n, b) => n + b.pings, 0);
    const timeouts = flow.buyers.reduce((n, b) => n + b.timeouts, 0);
    $("kpi-timeouts").textContent = count(timeouts);
    $("kpi-pings").textContent = `of ${count(pings)} pings since ${hhmm(flow.buyers_since)}`;
    const waiting = flow.teams.reduce((n, q) => n + q.queued, 0)
      + flow.outboxes.reduce((n, o) => n + o.pending, 0);
    $("kpi-waiting").textContent = count(waiting);
  }

  // Stacked bars (sold, unsold, in progress) of the window's minutes; a wide window folds
  // several minutes into a bar so no bar is thinner than a line.
  function chart(flow) {
    const per = Math.max(1, Math.ceil(flow.buckets.length / CHART_BARS_MAX));
    const bars = [];
    for (let i = 0; i < flow.buckets.length; i += per) {
      const group = flow.buckets.slice(i, i + per);
      const sum = (key) => group.reduce((n, b) => n + b[key], 0);
      bars.push({ minute: group[0].minute, received: sum("received"), sold: sum("sold"), unsold: sum("unsold") });
    }
    $("chart-title").textContent = per === 1 ? "Leads per minute" : `Leads per ${per} minutes`;
    // Drawn at the box's own width in pixels, so text and bars keep their shape at any width.
    const W = Math.max(280, Math.round($("chart").clientWidth || 640));
    const H = W < 500 ? 160 : 200, left = 34, bottom = 20, top = 8;
    const plotW = W - left - 4, plotH = H - bottom - top;
    const peak = Math.max(1, ...bars.map((b) => b.received));
    const scale = niceCeil(peak);
    const y = (v) => top + plotH - (v / scale) * plotH;
    const step = plotW / bars.length;
    const width = Math.max(1, step * (step > 4 ? 0.8 : 1));
    const picture = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: "bars", "data-bars": bars.length });
    for (const v of [0, scale / 2, scale]) {
      picture.append(svg("line", { x1: left, x2: W - 4, y1: y(v), y2: y(v), class: "grid-line" }));
      picture.append(svg("text", { x: left - 4, y: y(v) + 4, class: "axis", "text-anchor": "end" },
        Number.isInteger(v) ? String(v) : v.toFixed(1)));
    }
    bars.forEach((b, i) => {
      const x = left + i * step + (step - width) / 2;
      const other = b.received - b.sold - b.unsold;
      const g = svg("g", { class: "bar", "data-minute": b.minute, "data-received": b.received, "data-sold": b.sold },
        svg("title", {}, `${hhmm(b.minute)}: ${b.received} leads, ${b.sold} sold, ${b.unsold} unsold`));
      let base = top + plotH;
      for (const [value, kind] of [[b.sold, "sold"], [b.unsold, "unsold"], [other, "other"]]) {
        if (value <= 0) continue;
        const h = (value / scale) * plotH;
        base -= h;
        g.append(svg("rect", { x, y: base, width, height: h, class: kind }));
      }
      picture.append(g);
    });
    const labels = [0, Math.floor(bars.length / 2), bars.length - 1];
    for (const i of [...new Set(labels)]) {
      const anchor = i === 0 ? "start" : i === bars.length - 1 ? "end" : "middle";
      picture.append(svg("text", { x: left + i * step + step / 2, y: H - 4, class: "axis", "text-anchor": anchor },
        hhmm(bars[i].minute)));
    }
    $("chart").replaceChildren(picture);
    $("chart").setAttribute("aria-label",
      `${$("chart-title").textContent}: ${flow.totals.received} leads over the last ${flow.minutes} minutes`);
  }

  function niceCeil(value) {
    const power = 10 ** Math.floor(Math.log10(value));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * power >= value) return m * power;
    return 10 * power;
  }

  function bar(value, peak) {
    const pct = peak > 0 ? Math.max(1, Math.round((value / peak) * 100)) : 0;
    return svg("svg", { viewBox: "0 0 100 8", class: "meter", preserveAspectRatio: "none" },
      svg("rect", { x: 0, y: 0, width: 100, height: 8, class: "meter-back" }),
      svg("rect", { x: 0, y: 0, width: pct, height: 8, class: "meter-fill" }));
  }

  function buyers(flow) {
    for (const b of flow.buyers) if (b.name) names.set(b.buyer_id, b.name);
    $("buyers-since").textContent =
      `Counted by this API process since ${when(flow.buyers_since)}; the 50 most pinged.`;
    const peak = Math.max(0, ...flow.buyers.map((b) => b.latency_avg_ms || 0));
    rows($("buyers"), flow.buyers, (b) =>
      el("tr", { "data-buyer-id": b.buyer_id },
        el("td", null, b.name || b.buyer_id),
        el("td", { class: "num" }, count(b.pings)),
        el("td", { class: "num" }, count(b.bids)),
        el("td", { class: b.timeouts ? "num warn" : "num", "data-col": "timeouts" }, count(b.timeouts)),
        el("td", { class: b.errors ? "num warn" : "num" }, count(b.errors)),
        el("td", { class: "latency" },
          el("span", { class: "ms" }, b.latency_avg_ms === null ? "–" : `${b.latency_avg_ms} ms`),
          b.latency_avg_ms === null ? null : bar(b.latency_avg_ms, peak)),
        el("td", { class: "num" }, b.latency_p95_ms === null ? "–" : `${b.latency_p95_ms} ms`)),
    "no-buyers");
  }

  function queues(flow) {
    const labels = { deliveries: "Deliveries to buyers", notifications: "Notifications", crm_syncs: "CRM pushes" };
    rows($("outboxes"), flow.outboxes, (o) =>
      el("tr", { "data-outbox": o.name },
        el("td", null, labels[o.name] || o.name),
        el("td", { class: o.pending ? "num warn" : "num" }, count(o.pending)),
        el("td", null, o.oldest_at ? ago(o.oldest_at) : "–")));
    for (const q of flow.teams) if (q.name) names.set(q.team_id, q.name);
    rows($("teams"), flow.teams, (q) =>
      el("tr", { "data-team-id": q.team_id },
        el("td", null, q.name || shortId(q.team_id)),
        el("td", { class: q.queued ? "num warn" : "num" }, count(q.queued)),
        el("td", { class: "num" }, count(q.offered)),
        el("td", null, ago(q.oldest_queued_at))),
    "no-teams");
    $("no-broker").hidden = flow.broker !== null;
    $("broker").hidden = flow.broker === null;
    rows($("broker"), flow.broker || [], (q) =>
      el("tr", null, el("td", null, q.queue), el("td", { class: "num" }, count(q.ready)),
        el("td", { class: "num" }, count(q.delayed)), el("td", { class: q.dead ? "num warn" : "num" }, count(q.dead))));
  }

  let recentSig = "";

  function recent(flow) {
    for (const r of flow.recent) names.set(r.supplier_id, r.supplier);
    const sig = JSON.stringify(flow.recent);
    if (sig === recentSig) return; // keep the links still under the operator's finger
    recentSig = sig;
    rows($("recent"), flow.recent, (r) =>
      el("tr", { "data-lead-id": r.lead_id },
        el("td", null, el("a", { href: `#lead=${r.lead_id}`, class: "open-lead", title: r.lead_id }, shortId(r.lead_id))),
        el("td", null, hhmm(r.created_at)),
        el("td", null, el("span", { class: `status ${r.status}` }, r.status), r.test ? " (test)" : null),
        el("td", null, r.vertical),
        el("td", null, r.channel),
        el("td", null, r.supplier)));
  }

  async function refresh() {
    clearTimeout(timer);
    const mine = ++flowSeq;
    const res = await api(`/v1/ops/flow?minutes=${minutes}`);
    if (mine !== flowSeq) return; // a newer one is on its way
    if (res.ok && res.data) {
      lastFlow = res.data;
      tiles(res.data);
      chart(res.data);
      buyers(res.data);
      queues(res.data);
      recent(res.data);
      problem(null);
      live(true, `Live · ${new Date(res.data.now).toLocaleTimeString()}`);
      timer = setTimeout(refresh, REFRESH_MS);
    } else {
      const why = res.data && res.data.error ? res.data.error.message : `HTTP ${res.status || "offline"}`;
      problem(`Could not read the flow (${why}); retrying.`);
      live(false, "Reconnecting…");
      timer = setTimeout(refresh, RETRY_MS);
    }
  }

  // -- one lead -----------------------------------------------------------------------------

  async function loadVerticals() {
    const res = await api("/v1/verticals");
    if (res.ok && Array.isArray(res.data)) for (const v of res.data) currencies.set(v.slug, v.currency);
  }

  async function lookUpNames(ids) {
    const unknown = [...new Set(ids.filter((id) => id && !names.has(String(id))))].slice(0, NAMES_FETCH_MAX);
    await Promise.all(unknown.map(async (id) => {
      const res = await api(`/v1/parties/${encodeURIComponent(id)}`);
      if (res.ok && res.data && res.data.name) names.set(String(id), res.data.name);
    }));
    for (const node of document.querySelectorAll("#lead [data-party]")) {
      const name = names.get(node.dataset.party);
      if (name) node.textContent = name;
    }
  }

  function searchError(text) {
    $("search-error").hidden = !text;
    $("search-error").textContent = text || "";
    $("lead-id").setAttribute("aria-invalid", text ? "true" : "false");
  }

  function facts(pairs) {
    const items = [];
    for (const [label, value] of pairs) {
      if (value === null || value === undefined || value === "") continue;
      items.push(el("dt", null, label), el("dd", null, value));
    }
    return el("dl", { class: "fields" }, items);
  }

  function traceStage(stage, currency) {
    const entries = [...stage.entries].sort((a, b) =>
      (a.reason === "sold" ? 0 : 1) - (b.reason === "sold" ? 0 : 1) || (b.bid_minor || 0) - (a.bid_minor || 0));
    const details = (d) => Object.entries(d || {})
      .map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join(", ");
    const head = el("tr", null, el("th", null, "Campaign"), el("th", null, "Buyer"), el("th", null, "Reason"),
      el("th", { class: "num" }, "Bid"), el("th", { class: "num" }, "Payout"), el("th", { class: "num" }, "Latency"));
    const rows_ = entries.map((e) =>
      el("tr", { class: e.reason === "sold" ? "entry won" : "entry", "data-campaign-id": e.campaign_id,
                 "data-reason": e.reason || "" },
        el("td", null, el("code", { class: "id", title: e.campaign_id }, shortId(e.campaign_id))),
        el("td", null, party(e.buyer_id)),
        el("td", null, reason(e.reason),
          Object.keys(e.details || {}).length ? el("div", { class: "muted small" }, details(e.details)) : null),
        el("td", { class: "num" }, money(e.bid_minor, currency)),
        el("td", { class: "num" }, money(e.payout_minor, currency)),
        el("td", { class: "num" }, e.latency_ms === undefined || e.latency_ms === null ? "–" : `${e.latency_ms} ms`)));
    const n = entries.length;
    const title = `${stage.stage === "ping" ? "Ping" : "Post"} · ${when(stage.created_at)} · ${n} campaign${n === 1 ? "" : "s"}`;
    return el("div", { class: "stage", "data-stage": stage.stage },
      el("h4", null, title),
      n ? el("div", { class: "scroll" },
        el("table", { class: "grid trace" }, el("thead", null, head), el("tbody", null, rows_)))
        : el("p", { class: "muted" }, stage.stage === "post" ? "No campaign was left to post to." : "No campaign saw it."));
  }

  function routingView(r) {
    const d = r.decision || {};
    return el("section", { class: "routing", id: "routing" },
      el("h3", null, "Routing to a team"),
      facts([
        ["Team", party(r.team_id)],
        ["Status", r.status],
        ["Agent", r.agent_id ? party(r.agent_id) : null],
        ["Why", r.reason ? reason(r.reason) : null],
        ["Strategy", d.strategy ? `${d.strategy}${d.rule !== undefined && d.rule !== null ? ` (rule ${d.rule})` : ""}` : null],
        ["Explanation", d.explanation || d.account || d.call || null],
        ["Owned since", r.owned_since ? when(r.owned_since) : null],
        ["First contact", r.first_contact_at ? when(r.first_contact_at) : null],
        ["Reassigned", r.reassign_count ? String(r.reassign_count) : null],
      ]),
      r.offers && r.offers.length ? el("div", { class: "scroll" },
        el("table", { class: "grid" },
          el("thead", null, el("tr", null, el("th", null, "Offer to"), el("th", null, "Mode"), el("th", null, "Status"),
            el("th", { class: "num" }, "Round"), el("th", null, "Made"), el("th", null, "Decided"))),
          el("tbody", null, r.offers.map((o) => el("tr", null, el("td", null, party(o.agent_id)), el("td", null, o.mode),
            el("td", null, o.status), el("td", { class: "num" }, o.round), el("td", null, when(o.created_at)),
            el("td", null, o.decided_at ? when(o.decided_at) : "–")))))) : el("p", { class: "muted" }, "No offers made."),
      r.excluded && r.excluded.length ? el("div", null, el("h4", null, "Agents not eligible now"),
        el("ul", { class: "plain" }, r.excluded.map((x) => el("li", null, party(x.agent_id), ": ", reason(x.reason))))) : null);
  }

  function callView(c, currency) {
    return el("section", { class: "call", id: "call" },
      el("h3", null, "The call"),
      facts([
        ["Status", c.status],
        ["Ring", c.ring],
        ["Answered by", c.answered_by || null],
        ["Duration", c.duration_s !== undefined && c.duration_s !== null ? `${c.duration_s} s (billed from ${c.min_duration_s} s)` : null],
        ["Price", c.price_minor !== undefined ? money(c.price_minor, c.currency || currency) : null],
        ["Payout", c.payout_minor !== undefined ? money(c.payout_minor, c.currency || currency) : null],
        ["Not billed because", c.reason ? c.reason : null],
        ["Connected", c.connected_at ? when(c.connected_at) : null],
        ["Ended", c.ended_at ? when(c.ended_at) : null],
      ]));
  }

  async function openLead(id) {
    id = (id || "").trim();
    if (!LEAD_ID.test(id)) {
      searchError("A lead id looks like 0192f0c4-5b1e-7cc2-9d43-3a1f2b9e8d10.");
      return;
    }
    searchError(null);
    $("lead-id").value = id;
    const mine = ++openSeq;
    const box = $("lead");
    box.hidden = false;
    box.replaceChildren(el("p", { class: "muted" }, "Loading…"));
    const [lead, trace, routing] = await Promise.all([
      api(`/v1/leads/${id}`), api(`/v1/leads/${id}/trace`), api(`/v1/leads/${id}/routing`),
    ]);
    if (mine !== openSeq) return;
    if (!lead.ok) {
      box.hidden = true;
      searchError(lead.status === 404 ? "No lead has that id." : `Could not read the lead (HTTP ${lead.status || "offline"}).`);
      return;
    }
    const l = lead.data;
    const t = trace.ok ? trace.data : { stages: [], reasons: [] };
    let call = null;
    if (l.channel === "call" && t.ping_id) {
      const res = await api(`/v1/calls/${t.ping_id}`);
      if (mine !== openSeq) return;
      call = res.ok ? res.data : null;
    }
    const currency = currencies.get(l.vertical);
    box.replaceChildren(...[
      el("div", { class: "row lead-head" },
        el("h3", { id: "lead-title" }, `Lead ${l.lead_id}`),
        el("span", { class: `status ${l.status}`, id: "lead-status" }, l.status),
        el("button", { type: "button", class: "secondary", id: "close-lead",
                       onclick: () => { box.hidden = true; history.replaceState(null, "", location.pathname); } }, "Close")),
      facts([
        ["Arrived", when(l.created_at)],
        ["Vertical", l.vertical],
        ["Channel", l.channel],
        ["Supplier", party(l.supplier_id)],
        ["Source", l.source || null],
        ["Score", l.score !== undefined && l.score !== null ? `${l.score}${l.priority ? ` (${l.priority})` : ""}` : null],
        ["Test lead", l.test ? "yes" : null],
      ]),
      t.reasons && t.reasons.length ? el("div", { class: "reasons" }, el("h4", null, "Reasons in this trace"),
        el("ul", { class: "plain", id: "trace-reasons" }, t.reasons.map((code) => el("li", null, reason(code))))) : null,
      el("section", { class: "trace-box", id: "trace" },
        el("h3", null, "Trace"),
        t.stages.length ? t.stages.map((s) => traceStage(s, currency))
          : el("p", { class: "muted" }, trace.ok ? "No campaign saw this lead." : `No trace (HTTP ${trace.status}).`)),
      routing.ok ? routingView(routing.data) : null,
      call ? callView(call, currency) : null,
    ].filter(Boolean));
    const ids = [l.supplier_id];
    for (const s of t.stages) for (const e of s.entries) ids.push(e.buyer_id);
    if (routing.ok) {
      ids.push(routing.data.team_id, routing.data.agent_id);
      for (const o of routing.data.offers || []) ids.push(o.agent_id);
      for (const x of routing.data.excluded || []) ids.push(x.agent_id);
    }
    lookUpNames(ids);
    box.scrollIntoView({ block: "start" });
  }

  function fromHash() {
    const match = location.hash.match(/^#lead=([0-9a-f-]+)$/i);
    if (match) openLead(match[1]);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("window").addEventListener("change", (event) => {
      minutes = Number(event.currentTarget.value);
      refresh();
    });
    $("search").addEventListener("submit", (event) => {
      event.preventDefault();
      const id = $("lead-id").value.trim();
      if (location.hash === `#lead=${id}`) openLead(id);
      else if (LEAD_ID.test(id)) location.hash = `lead=${id}`; // a link to this trace
      else openLead(id);
    });
    window.addEventListener("hashchange", fromHash);
    let resizing = null;
    window.addEventListener("resize", () => {
      clearTimeout(resizing);
      resizing = setTimeout(() => lastFlow && chart(lastFlow), 150);
    });
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) refresh(); // catch up at once after a hidden tab's pause
    });
    refresh();
    loadVerticals().then(fromHash);
  });
})();
