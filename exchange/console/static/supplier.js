// The supplier's page: the report of its leads over a range (received, sold, sold rate, payout;
// by channel and by source), the leads of that range and one lead's trace reasons, its intake
// sources, its calls, its balance and statement. It only reads: every call is a GET of the JSON
// API with the session cookie. Values go on the page as text, never as HTML. Money is integer
// minor units on the wire and is written out by placing the decimal point in the digits,
// never through a float.
"use strict";
(() => {
  const { api, el, errorText } = window.Console;
  const $ = (id) => document.getElementById(id);
  const PAGE_SIZE = 50; // leads and calls read per click of "More"
  const DAY_MS = 86400000;
  const WEEK_DAYS = 7;
  const BPS_PER_PERCENT_TENTH = 10; // 6000 bps -> 600 tenths of a percent -> "60.0%"

  let range = null; // {from: Date, to: Date}
  let generation = 0; // bumped per range read: an answer for an older range is dropped
  let leadsAfter = null; // next_after of the last page of leads read
  let callsAfter = null;
  let leadRows = 0;
  let callRows = 0;
  const verticals = new Map(); // slug -> {currency, fields: Map(name -> {label, format})}

  function problem(text) {
    $("problem").hidden = !text;
    $("problem").textContent = text || "";
  }

  const shortId = (id) => String(id).slice(-8); // ids are time-ordered: the tail differs
  const when = (iso) =>
    iso ? new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "short" }) : "";
  const words = (text) => String(text).replaceAll("_", " ");

  // -- money and rates: integers to text, without floats ------------------------------------

  function formatOf(code) {
    try {
      return new Intl.NumberFormat("en", { style: "currency", currency: code });
    } catch (err) {
      return null;
    }
  }

  // 123450, "USD" -> "$1,234.50": the digits are split where the currency's decimals start.
  function money(minor, code) {
    if (minor === null || minor === undefined) return "";
    const format = formatOf(code);
    const digits = format ? format.resolvedOptions().maximumFractionDigits : 2;
    const sign = minor < 0 ? "-" : "";
    const text = String(Math.abs(minor)).padStart(digits + 1, "0");
    const whole = (digits ? text.slice(0, -digits) : text).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    const number = digits ? `${whole}.${text.slice(-digits)}` : whole;
    const symbol = format ? (format.formatToParts(0).find((p) => p.type === "currency") || {}).value : null;
    return symbol && symbol !== code ? `${sign}${symbol}${number}` : `${sign}${number} ${code}`;
  }

  // 6666 basis points -> "66.6%" (rounded down, as the API rounds).
  function rate(bps) {
    const tenths = Math.floor(bps / BPS_PER_PERCENT_TENTH);
    return `${Math.floor(tenths / 10)}.${tenths % 10}%`;
  }

  // A sum of minor units per currency -> "$12.00 + €3.00" ("$0.00"-like when nothing).
  function moneyByCurrency(totals) {
    const codes = Object.keys(totals).sort();
    if (!codes.length) return money(0, "USD");
    return codes.map((c) => money(totals[c], c)).join(" + ");
  }

  // -- the range ------------------------------------------------------------------------------

  function startOfDay(date) {
    return new Date(date.getFullYear(), date.getMonth(), date.getDate());
  }

  // Local days and months (the supplier's clock), sent to the API as UTC instants.
  function rangeOf(choice) {
    const now = new Date();
    const today = startOfDay(now);
    const tomorrow = startOfDay(new Date(today.getTime() + DAY_MS + DAY_MS / 2));
    if (choice === "week") {
      return { from: startOfDay(new Date(today.getTime() - (WEEK_DAYS - 1) * DAY_MS + DAY_MS / 2)), to: tomorrow };
    }
    if (choice === "month") {
      return { from: new Date(now.getFullYear(), now.getMonth(), 1), to: new Date(now.getFullYear(), now.getMonth() + 1, 1) };
    }
    return { from: today, to: tomorrow };
  }

  const instant = (date) => date.toISOString().replace(/\.\d{3}Z$/, "Z");

  // The smallest UUIDv7 of the range's first millisecond: ids are UUIDv7 (time-ordered), so
  // `after` it lists what arrived from then on. The range ends now or later: no upper bound.
  function firstIdOf(date) {
    const hex = date.getTime().toString(16).padStart(12, "0");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-0000-0000-000000000000`;
  }

  // -- the report -------------------------------------------------------------------------------

  async function report(groupBy) {
    const params = new URLSearchParams({ from: instant(range.from), to: instant(range.to) });
    if (groupBy) params.set("group_by", groupBy);
    return api("GET", `/v1/reports/leads?${params}`);
  }

  function reportRow(key, row) {
    return el("tr", { "data-key": key },
      el("th", { scope: "row" }, key),
      el("td", { class: "num received" }, row.received),
      el("td", { class: "num sold" }, row.sold),
      el("td", { class: "num unsold" }, row.unsold),
      el("td", { class: "num rate" }, rate(row.sold_rate_bps)),
      el("td", { class: "num payout" }, money(row.payout_minor, row.currency)));
  }

  function fillTable(id, rows, keyOf) {
    const body = $(id).tBodies[0];
    if (!rows.length) {
      body.replaceChildren(el("tr", null, el("td", { colspan: 6, class: "muted" }, "No leads.")));
      return;
    }
    body.replaceChildren(...rows.map((row) => reportRow(keyOf(row), row)));
  }

  async function loadReport() {
    const gen = generation;
    const [all, byChannel, bySource] = await Promise.all([report(null), report("channel"), report("source")]);
    if (gen !== generation) return;
    const failed = [all, byChannel, bySource].find((res) => !res.ok);
    if (failed) return problem(errorText(failed));
    // Revenue and margin are null for a supplier's key: only payouts are shown.
    let received = 0;
    let sold = 0;
    const payout = {};
    for (const row of all.data.rows) {
      received += row.received;
      sold += row.sold;
      payout[row.currency] = (payout[row.currency] || 0) + row.payout_minor;
    }
    $("t-received").textContent = String(received);
    $("t-sold").textContent = String(sold);
    $("t-rate").textContent = received ? rate(Math.floor((sold * 10000) / received)) : "–";
    $("t-payout").textContent = moneyByCurrency(payout);
    fillTable("by-channel", byChannel.data.rows, (row) => words(row.channel));
    fillTable("by-source", bySource.data.rows, (row) => (row.source === null ? "(no source)" : row.source));
  }

  // -- leads ----------------------------------------------------------------------------------

  function leadRow(lead) {
    return el("tr", { "data-lead-id": lead.lead_id, class: lead.test ? "test" : null },
      el("td", null, when(lead.created_at)),
      el("td", null, el("code", { title: lead.lead_id }, shortId(lead.lead_id))),
      el("td", { class: `status ${lead.status}` }, words(lead.status), lead.test ? " (test)" : null),
      el("td", null, words(lead.channel)),
      el("td", null, lead.source || ""),
      el("td", null, words(lead.vertical)),
      el("td", null, el("button", { type: "button", class: "secondary small details", onclick: () => showLead(lead.lead_id) }, "Details")));
  }

  async function loadLeads(more) {
    const params = new URLSearchParams({ limit: String(PAGE_SIZE), after: more ? leadsAfter : firstIdOf(range.from) });
    const gen = generation;
    const res = await api("GET", `/v1/leads?${params}`);
    if (gen !== generation) return;
    if (!res.ok) return problem(errorText(res));
    const rows = res.data.items.map(leadRow);
    if (more) $("leads").tBodies[0].append(...rows);
    else $("leads").tBodies[0].replaceChildren(...rows);
    leadRows = (more ? leadRows : 0) + rows.length;
    leadsAfter = res.data.next_after;
    $("more-leads").hidden = !leadsAfter;
    $("lead-count").textContent = leadsAfter ? `${leadRows}+` : String(leadRows);
    $("no-leads").hidden = leadRows > 0;
    $("leads").parentElement.hidden = leadRows === 0;
  }

  // Why a lead went where it went, in the supplier's words: the trace names no buyer to it.
  function explain(reason) {
    const [code, arg] = reason.split(":");
    switch (code) {
      case "sold": return "Sold to a buyer's campaign.";
      case "campaign_paused": return "A campaign was paused.";
      case "schedule_closed": return "The lead came outside a campaign's schedule.";
      case "filtered":
        if (arg === "expression") return "A campaign's expression filter did not match the lead.";
        if (arg === "score") return "The lead's score was outside a campaign's range.";
        if (arg === "priority") return "The lead's priority was not one a campaign takes.";
        return `A campaign's filter on ${words(arg)} did not match (or the lead had no ${words(arg)}).`;
      case "duplicate": return "A buyer already had this person.";
      case "cap_reached": return `A campaign's lead cap for the ${arg} was used up.`;
      case "budget_reached": return `A campaign's spend cap for the ${arg} could not cover the lead.`;
      case "insufficient_balance": return "A buyer's balance and credit could not pay for the lead.";
      case "exclusivity_conflict": return "Exclusive and shared sales do not mix for this lead.";
      case "below_floor": return "A bid was under the campaign's floor or your minimum payout.";
      case "ping_timeout": return "A buyer did not answer the ping in time.";
      case "ping_error": return "A ping to a buyer failed.";
      case "ping_rejected": return "A buyer answered the ping with no bid.";
      case "post_rejected": return "A buyer refused the posted lead.";
      case "post_error": return "A post to a buyer failed.";
      case "not_better_than_winner": return "A campaign bid, but another bid won.";
      default: return "See the reason codes in the documentation.";
    }
  }

  // A lead's fields with its vertical's labels; money fields are minor units of its currency.
  function fieldList(slug, fields) {
    const entries = Object.entries(fields || {});
    if (!entries.length) return el("p", { class: "muted" }, "No fields.");
    const vertical = verticals.get(slug) || { currency: "USD", fields: new Map() };
    const shown = (name, value) => {
      const format = (vertical.fields.get(name) || {}).format;
      if (format === "money" && Number.isInteger(value)) return money(value, vertical.currency);
      if (typeof value === "boolean") return value ? "yes" : "no";
      if (value !== null && typeof value === "object") return JSON.stringify(value);
      return format === "enum" ? words(value) : value;
    };
    return el("dl", { class: "fields" }, entries.flatMap(([name, value]) => [
      el("dt", null, (vertical.fields.get(name) || {}).label || words(name)),
      el("dd", { "data-field": name }, shown(name, value))]));
  }

  async function loadVerticals() {
    const res = await api("GET", "/v1/verticals");
    if (!res.ok || !Array.isArray(res.data)) return; // the fields then show by their names
    for (const v of res.data) {
      const fields = new Map((v.fields || []).map((f) => [f.name, { label: f.label, format: f.format }]));
      verticals.set(v.slug, { currency: v.currency, fields });
    }
  }

  async function showLead(leadId) {
    const box = $("lead-detail");
    box.hidden = false;
    box.replaceChildren(el("p", { class: "muted" }, "Reading…"));
    const [lead, trace] = await Promise.all([api("GET", `/v1/leads/${leadId}`), api("GET", `/v1/leads/${leadId}/trace`)]);
    if (!lead.ok) return box.replaceChildren(el("p", { class: "error" }, errorText(lead)));
    const l = lead.data;
    const reasons = trace.ok ? trace.data.reasons : [];
    box.dataset.leadId = leadId;
    box.replaceChildren(
      el("div", { class: "row" },
        el("h3", null, "Lead ", el("code", { title: l.lead_id }, shortId(l.lead_id))),
        el("button", { type: "button", class: "secondary small", id: "close-lead", onclick: () => { box.hidden = true; } }, "Close")),
      el("dl", { class: "fields" },
        el("dt", null, "Status"), el("dd", { class: `status ${l.status}` }, words(l.status)),
        el("dt", null, "Received"), el("dd", null, when(l.created_at)),
        el("dt", null, "Channel"), el("dd", null, words(l.channel)),
        el("dt", null, "Source"), el("dd", null, l.source || "(none)"),
        el("dt", null, "Vertical"), el("dd", null, words(l.vertical)),
        l.test ? [el("dt", null, "Test"), el("dd", null, "yes: never sold, never counted")] : null),
      el("h3", null, "Why it went where it went"),
      !trace.ok
        ? el("p", { class: "error" }, errorText(trace))
        : reasons.length
          ? el("ul", { class: "reasons" }, reasons.map((r) =>
              el("li", { "data-reason": r, class: r === "sold" ? "won" : null },
                el("code", null, r), " ", el("span", { class: "explain" }, explain(r)))))
          : el("p", { class: "muted no-reasons" },
            "No reason codes: no buyer's campaign for its vertical, state or zip code was weighed for it."),
      el("h3", null, "Fields"),
      fieldList(l.vertical, l.fields));
    box.scrollIntoView({ block: "nearest" });
  }

  // -- money ------------------------------------------------------------------------------------

  async function loadBalance() {
    const res = await api("GET", "/v1/ledger/me/balance");
    if (!res.ok) return problem(errorText(res));
    const rows = res.data.filter((a) => a.kind === "supplier");
    if (!rows.length) {
      $("balances").replaceChildren(el("dt", null, "Owed to you"), el("dd", { id: "balance-none" }, money(0, "USD")));
      return;
    }
    // A supplier's account is on the credit side: its closing is what the exchange owes.
    $("balances").replaceChildren(...rows.flatMap((a) => [
      el("dt", null, `Owed to you (${a.currency})`),
      el("dd", { class: "balance", "data-currency": a.currency }, money(a.closing_minor, a.currency))]));
  }

  function statementLink() {
    const period = $("statement-period").value; // YYYY-MM
    $("statement-link").href = `/v1/ledger/me/statement.csv?period=${encodeURIComponent(period)}`;
  }

  // -- sources and calls ----------------------------------------------------------------------

  async function loadSources() {
    const res = await api("GET", "/v1/intake-sources?limit=500");
    if (!res.ok) return problem(errorText(res));
    const items = res.data.items;
    $("sources").tBodies[0].replaceChildren(...items.map((s) =>
      el("tr", { "data-source-id": s.id },
        el("td", null, s.name),
        el("td", null, words(s.channel)),
        el("td", null, words(s.vertical)),
        el("td", null, s.source || ""),
        el("td", null, el("code", { class: "path" }, s.path)),
        el("td", { class: s.active ? "state on" : "state off" }, s.active ? "active" : "inactive"))));
    $("source-count").textContent = String(items.length);
    $("no-sources").hidden = items.length > 0;
    $("sources").parentElement.hidden = items.length === 0;
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "";
    return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
  }

  async function loadCalls(more) {
    const params = new URLSearchParams({ limit: String(PAGE_SIZE), after: more ? callsAfter : firstIdOf(range.from) });
    const gen = generation;
    const res = await api("GET", `/v1/calls?${params}`);
    if (gen !== generation) return;
    if (!res.ok) return problem(errorText(res));
    const rows = res.data.items.map((c) =>
      el("tr", { "data-call-id": c.call_id },
        el("td", null, when(c.created_at)),
        el("td", null, el("code", { title: c.call_id }, shortId(c.call_id))),
        el("td", { class: `status ${c.status}` }, words(c.status), c.reason ? el("span", { class: "muted small" }, ` (${words(c.reason)})`) : null),
        el("td", { class: "num" }, duration(c.duration_s)),
        el("td", { class: "num" }, money(c.payout_minor, c.currency)),
        el("td", null, c.lead_id
          ? el("button", { type: "button", class: "link-like", title: c.lead_id, onclick: () => showLead(c.lead_id) }, shortId(c.lead_id))
          : "")));
    if (more) $("calls").tBodies[0].append(...rows);
    else $("calls").tBodies[0].replaceChildren(...rows);
    callRows = (more ? callRows : 0) + rows.length;
    callsAfter = res.data.next_after;
    $("more-calls").hidden = !callsAfter;
    $("call-count").textContent = callsAfter ? `${callRows}+` : String(callRows);
    $("no-calls").hidden = callRows > 0;
    $("calls").parentElement.hidden = callRows === 0;
  }

  // -- wiring -----------------------------------------------------------------------------------

  async function loadRange() {
    problem(null);
    const gen = ++generation;
    range = rangeOf($("range").value);
    const last = new Date(range.to.getTime() - 1);
    $("range-text").textContent = `${range.from.toLocaleDateString()} to ${last.toLocaleDateString()}`;
    document.body.dataset.from = instant(range.from);
    document.body.dataset.to = instant(range.to);
    await Promise.all([loadReport(), loadLeads(false), loadCalls(false)]);
    if (gen !== generation) return;
    document.body.dataset.range = $("range").value; // what the page now shows (tests wait on it)
  }

  async function start() {
    const now = new Date();
    $("statement-period").value = now.toISOString().slice(0, 7); // this UTC month
    statementLink();
    $("statement-period").addEventListener("input", statementLink);
    $("statement-form").addEventListener("submit", (e) => e.preventDefault());
    $("range-form").addEventListener("submit", (e) => e.preventDefault());
    $("range").addEventListener("change", () => loadRange());
    $("refresh").addEventListener("click", () => Promise.all([loadRange(), loadBalance(), loadSources()]));
    $("more-leads").addEventListener("click", () => loadLeads(true));
    $("more-calls").addEventListener("click", () => loadCalls(true));
    await Promise.all([loadRange(), loadBalance(), loadSources(), loadVerticals()]);
    document.body.dataset.ready = "true";
  }

  start();
})();
