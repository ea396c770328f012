// Finance's page: returns to approve or deny, a lead's ledger entries with their postings, the
// trial balance and account balances of a period, statements as CSV, reconciliation and its
// anomalies, and closing a month. Everything goes through the JSON API with the session cookie;
// anything that changes state sends the page's CSRF token. Values are put on the page as text,
// never as HTML. Money arrives in integer minor units: sums are BigInt, and display splits the
// digits as a string (no float ever touches an amount).
"use strict";
(() => {
  const RETURNS_PAGE = 100;
  const TABS = ["returns", "ledger", "balances", "reconciliation", "periods"];
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  const $ = (id) => document.getElementById(id);

  let returnsAfter = null; // next_after of the last page of returns read
  let returnsSeq = 0;

  const { api, el, errorText: why } = window.Console;
  const errorOf = (res) => (res.data && res.data.error) || {};

  function problem(text) {
    $("problem").hidden = !text;
    $("problem").textContent = text || "";
    if (text) $("done").hidden = true;
  }

  function done(...parts) {
    $("done").replaceChildren(...parts);
    $("done").hidden = parts.length === 0;
    if (parts.length) problem(null);
  }

  // A field's message under it: the API's reason for a path naming it, or the page's own check.
  function fieldError(id, text) {
    const box = $(`${id}-error`);
    box.hidden = !text;
    box.textContent = text || "";
    $(id).setAttribute("aria-invalid", text ? "true" : "false");
  }

  function apiFieldError(id, res, names) {
    const fields = errorOf(res).fields || [];
    const hit = fields.find((f) => names.some((n) => String(f.path).endsWith(n)));
    fieldError(id, hit ? hit.reason : why(res));
  }

  // -- money, ids, times --------------------------------------------------------------------

  const formats = new Map(); // currency -> {exponent, symbol}

  function formatOf(currency) {
    if (!formats.has(currency)) {
      let found = { exponent: 2, symbol: `${currency} ` };
      try {
        const nf = new Intl.NumberFormat("en-US", { style: "currency", currency });
        const part = nf.formatToParts(0).find((p) => p.type === "currency");
        found = { exponent: nf.resolvedOptions().maximumFractionDigits, symbol: part ? part.value : found.symbol };
      } catch (err) {
        // an unknown code: two decimals and the code itself
      }
      formats.set(currency, found);
    }
    return formats.get(currency);
  }

  // Minor units (a Number or BigInt integer) as "$1,234.50": digits split as a string.
  function money(minor, currency) {
    const { exponent, symbol } = formatOf(currency || "USD");
    const value = BigInt(minor);
    const digits = (value < 0n ? -value : value).toString().padStart(exponent + 1, "0");
    const whole = digits.slice(0, digits.length - exponent).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    const fraction = exponent ? `.${digits.slice(digits.length - exponent)}` : "";
    return `${value < 0n ? "−" : ""}${symbol}${whole}${fraction}`;
  }

  const shortId = (id) => (id ? `…${String(id).slice(-8)}` : ""); // ids are time-ordered: the tail differs
  const idText = (id) => el("code", { class: "id", title: id }, shortId(id));
  const when = (iso) => (iso ? new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "short" }) : "");

  // "buyer:0190…" -> "buyer …a1b2c3d4"; the exchange's own accounts by name.
  function accountLabel(code) {
    const [kind, rest, currency] = String(code).split(":");
    if (kind === "exchange") return el("span", { class: "account", title: code }, `exchange ${rest} ${currency || ""}`.trim());
    return el("span", { class: "account", title: code }, `${kind} `, el("code", { class: "id" }, shortId(rest)));
  }

  function currentMonth() {
    const now = new Date();
    return `${now.getUTCFullYear()}-${String(now.getUTCMonth() + 1).padStart(2, "0")}`;
  }

  const period = () => $("period").value; // "" is all time
  const withPeriod = (path) => (period() ? `${path}${path.includes("?") ? "&" : "?"}period=${period()}` : path);

  // -- tabs ---------------------------------------------------------------------------------

  function showTab() {
    const name = TABS.includes(location.hash.slice(1)) ? location.hash.slice(1) : "returns";
    for (const tab of TABS) {
      $(`tab-${tab}`).hidden = tab !== name;
      const link = document.querySelector(`.tabs a[data-tab="${tab}"]`);
      if (tab === name) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
  }

  // -- the books' health: trial balance and reconciliation, always in view ------------------

  function badge(id, ok, text) {
    $(id).className = `pill ${ok ? "good" : "bad"}`;
    $(id).textContent = text;
  }

  async function loadHealth() {
    const [trial, recon] = await Promise.all([
      api("GET", withPeriod("/v1/ledger/trial-balance")),
      api("GET", withPeriod("/v1/ledger/reconciliation")),
    ]);
    if (trial.ok) {
      badge("trial-badge", trial.data.balanced, `Trial balance: ${trial.data.balanced ? "balanced" : "out of balance"}`);
      drawTrial(trial.data);
    } else problem(why(trial));
    if (recon.ok) {
      const count = recon.data.anomalies.length;
      badge("recon-badge", recon.data.ok, `Reconciliation: ${count ? `${count} anomal${count === 1 ? "y" : "ies"}` : "no anomalies"}`);
      drawReconciliation(recon.data);
    } else problem(why(recon));
  }

  function drawTrial(trial) {
    $("trial-when").textContent = trial.period ? `at the end of ${trial.period}` : "now";
    const rows = trial.lines.map((line) =>
      el("tr", { "data-account": line.account },
        el("td", null, accountLabel(line.account)),
        el("td", null, line.currency),
        el("td", { class: "num debit" }, line.debit_minor ? money(line.debit_minor, line.currency) : ""),
        el("td", { class: "num credit" }, line.credit_minor ? money(line.credit_minor, line.currency) : "")));
    $("trial").tBodies[0].replaceChildren(...rows);
    $("trial").tFoot.replaceChildren(...trial.totals.map((t) =>
      el("tr", { class: "total", "data-currency": t.currency },
        el("th", { scope: "row" }, "Total"),
        el("td", null, t.currency),
        el("td", { class: "num debit" }, money(t.debits_minor, t.currency)),
        el("td", { class: "num credit" }, money(t.credits_minor, t.currency)))));
    const totals = trial.totals.map((t) => {
      const even = BigInt(t.difference_minor) === 0n;
      return el("p", { class: `verdict ${even ? "good" : "bad"}`, "data-currency": t.currency },
        even
          ? `${t.currency}: debits ${money(t.debits_minor, t.currency)} = credits ${money(t.credits_minor, t.currency)}. Balanced.`
          : `${t.currency}: debits ${money(t.debits_minor, t.currency)}, credits ${money(t.credits_minor, t.currency)}: off by ${money(t.difference_minor, t.currency)}.`);
    });
    $("trial-totals").replaceChildren(...(totals.length ? totals : [el("p", { class: "muted" }, "No entries yet.")]));
  }

  function drawReconciliation(recon) {
    $("recon-when").textContent = recon.period ? `sales of ${recon.period}` : "all sales";
    const count = recon.anomalies.length;
    $("recon-summary").className = `verdict ${recon.ok ? "good" : "bad"}`;
    $("recon-summary").textContent = `${recon.sales_checked} sale${recon.sales_checked === 1 ? "" : "s"} checked: ${
      count ? `${count} anomal${count === 1 ? "y" : "ies"}.` : "every one paired with its charge; no anomalies."}`;
    $("anomalies").hidden = count === 0;
    $("anomalies").tBodies[0].replaceChildren(...recon.anomalies.map((a) =>
      el("tr", { "data-code": a.code },
        el("td", null, el("span", { class: "tag bad" }, a.code.replaceAll("_", " "))),
        el("td", null, a.detail),
        el("td", null, a.sale_id ? idText(a.sale_id) : ""),
        el("td", null, a.entry_id ? idText(a.entry_id) : ""),
        el("td", null, a.account ? accountLabel(a.account) : ""))));
  }

  // -- returns ------------------------------------------------------------------------------

  async function loadReturns(more) {
    const mine = ++returnsSeq;
    const status = $("return-status").value;
    const query = new URLSearchParams({ limit: String(RETURNS_PAGE) });
    if (status) query.set("status", status);
    if (more && returnsAfter) query.set("after", returnsAfter);
    const res = await api("GET", `/v1/returns?${query}`);
    if (mine !== returnsSeq) return; // a newer read is on its way
    if (!res.ok) {
      problem(why(res));
      return;
    }
    returnsAfter = res.data.next_after;
    const rows = res.data.items.map(returnRow);
    const body = $("returns").tBodies[0];
    if (more) body.append(...rows);
    else body.replaceChildren(...rows);
    $("no-returns").hidden = body.children.length > 0;
    $("more-returns").hidden = !returnsAfter;
    if (status === "requested") $("return-count").textContent = String(body.children.length) + (returnsAfter ? "+" : "");
  }

  async function countRequested() {
    const res = await api("GET", `/v1/returns?status=requested&limit=${RETURNS_PAGE}`);
    if (res.ok) $("return-count").textContent = String(res.data.items.length) + (res.data.next_after ? "+" : "");
  }

  function returnRow(ret) {
    const decision = ret.status === "requested"
      ? el("div", { class: "decide" },
          el("input", { class: "note", type: "text", maxlength: 1000, placeholder: "note (optional)",
                        "aria-label": "Decision note" }),
          el("div", { class: "actions" },
            el("button", { class: "approve", type: "button", onclick: (e) => decide(ret, "approve", e) }, "Approve"),
            el("button", { class: "secondary deny", type: "button", onclick: (e) => decide(ret, "deny", e) }, "Deny")))
      : el("span", { class: "muted small" },
          ret.decided_at ? when(ret.decided_at) : "",
          ret.decision_note ? ` · ${ret.decision_note}` : "",
          ret.claw_back === true ? " · payout clawed back" : "",
          ret.claw_back === false ? " · exchange absorbed it" : "");
    return el("tr", { "data-return-id": ret.id, "data-lead-id": ret.lead_id, "data-status": ret.status },
      el("td", { "data-label": "Filed" }, when(ret.requested_at)),
      el("td", { "data-label": "Lead" },
        el("button", { class: "link-button open-lead", type: "button", title: ret.lead_id,
                       onclick: () => openLead(ret.lead_id) }, shortId(ret.lead_id))),
      el("td", { "data-label": "Buyer" }, idText(ret.buyer_id)),
      el("td", { "data-label": "Reason" }, ret.reason.replaceAll("_", " "),
        ret.note ? el("div", { class: "muted small" }, ret.note) : null),
      el("td", { class: "num amount", "data-label": "Amount" }, money(ret.price_minor, ret.currency)),
      el("td", { "data-label": "Status" }, el("span", { class: `tag ${ret.status}` }, ret.status)),
      el("td", { class: "decision", "data-label": "Decision" }, decision));
  }

  async function decide(ret, verb, event) {
    const row = event.currentTarget.closest("tr");
    for (const button of row.querySelectorAll("button.approve, button.deny")) button.disabled = true;
    const note = row.querySelector("input.note").value.trim();
    const res = await api("POST", `/v1/returns/${ret.id}/${verb}`, note ? { note } : undefined);
    if (!res.ok) {
      for (const button of row.querySelectorAll("button")) button.disabled = false;
      problem(errorOf(res).code === "return_decided"
        ? `This return was already ${(errorOf(res).details || {}).status || "decided"}.`
        : why(res));
    } else if (verb === "approve") {
      done(`Approved: ${money(ret.price_minor, ret.currency)} refunded to buyer ${shortId(ret.buyer_id)} `,
        `(lead ${shortId(ret.lead_id)}). `,
        el("button", { class: "link-button", type: "button", id: "see-ledger",
                       onclick: () => openLead(ret.lead_id) }, "See the lead's ledger"));
    } else {
      done(`Denied: the return of lead ${shortId(ret.lead_id)}; nothing moved.`);
    }
    await Promise.all([loadReturns(false), countRequested(), loadHealth(), loadBalances()]);
  }

  // -- a lead's ledger ----------------------------------------------------------------------

  const KIND_TEXT = {
    sale: "Sale: the buyer charged, the supplier owed its payout",
    return: "Return: the refund to the buyer",
    reversal: "Reversal: the exact opposite of an earlier entry",
    adjustment: "Adjustment",
    deposit: "Deposit",
    payout: "Payout",
  };

  function openLead(leadId) {
    $("lead-id").value = leadId;
    location.hash = "#ledger";
    loadLead();
  }

  async function loadLead(event) {
    if (event) event.preventDefault();
    const leadId = $("lead-id").value.trim();
    if (!UUID.test(leadId)) {
      fieldError("lead-id", "A lead id is a UUID, like 0192f0c4-5b7e-7d1a-9c3e-1f2a3b4c5d6e.");
      return;
    }
    fieldError("lead-id", null);
    const res = await api("GET", `/v1/ledger/leads/${leadId}`);
    if (!res.ok) {
      apiFieldError("lead-id", res, ["lead_id"]);
      return;
    }
    drawLead(leadId, res.data);
  }

  function postingsTable(postings) {
    const totals = new Map(); // currency -> [debits, credits] as BigInt
    const rows = postings.map((p) => {
      const amount = BigInt(p.amount_minor);
      const sums = totals.get(p.currency) || [0n, 0n];
      if (amount > 0n) sums[0] += amount;
      else sums[1] -= amount;
      totals.set(p.currency, sums);
      return el("tr", { "data-account": p.account },
        el("td", null, accountLabel(p.account)),
        el("td", { class: "num debit" }, amount > 0n ? money(amount, p.currency) : ""),
        el("td", { class: "num credit" }, amount < 0n ? money(-amount, p.currency) : ""));
    });
    const foot = [...totals].map(([currency, [debits, credits]]) =>
      el("tr", { class: "total" },
        el("th", { scope: "row" }, `Total ${currency}`),
        el("td", { class: "num debit" }, money(debits, currency)),
        el("td", { class: "num credit" }, money(credits, currency))));
    return el("div", { class: "scroll" },
      el("table", { class: "grid postings" },
        el("thead", null, el("tr", null, el("th", null, "Account"), el("th", { class: "num" }, "Debit"),
                             el("th", { class: "num" }, "Credit"))),
        el("tbody", null, rows),
        el("tfoot", null, foot)));
  }

  function drawLead(leadId, entries) {
    const head = el("p", { class: "muted" },
      entries.length
        ? `${entries.length} entr${entries.length === 1 ? "y" : "ies"} about lead ${shortId(leadId)}, oldest first; each entry's debits equal its credits.`
        : `No entries about lead ${shortId(leadId)}: it was never sold, or the id is not a lead's.`);
    const cards = entries.map((entry) =>
      el("article", { class: "entry", "data-entry-id": entry.id, "data-kind": entry.kind },
        el("div", { class: "row" },
          el("span", { class: `tag ${entry.kind}` }, entry.kind),
          el("span", { class: "title" }, KIND_TEXT[entry.kind] || entry.kind),
          el("span", { class: "muted small" }, when(entry.created_at), ` · ${entry.period}`)),
        el("p", { class: "muted small" }, "Entry ", idText(entry.id),
          entry.sale_id ? [" · sale ", idText(entry.sale_id)] : null,
          entry.reverses_id ? [" · reverses ", idText(entry.reverses_id)] : null,
          entry.created_by ? [" · by ", idText(entry.created_by)] : " · by the exchange",
          entry.memo ? ` · ${entry.memo}` : null),
        postingsTable(entry.postings)));
    $("lead-ledger").replaceChildren(head, ...cards);
  }

  // -- balances and statements --------------------------------------------------------------

  async function loadBalances(event) {
    if (event) event.preventDefault();
    const partyId = $("party-id").value.trim();
    if (partyId && !UUID.test(partyId)) {
      fieldError("party-id", "A party id is a UUID; leave it empty for every account.");
      return;
    }
    fieldError("party-id", null);
    const query = new URLSearchParams();
    if (partyId) query.set("party_id", partyId);
    if (period()) query.set("period", period());
    const res = await api("GET", `/v1/ledger/balances${query.toString() ? `?${query}` : ""}`);
    if (!res.ok) {
      apiFieldError("party-id", res, ["party_id"]);
      return;
    }
    const month = period() || currentMonth();
    $("balances-when").textContent = period() ? `over ${period()}` : "over all time";
    $("statement-month").textContent = month;
    $("balances").tBodies[0].replaceChildren(...res.data.map((b) =>
      el("tr", { "data-account": b.account },
        el("td", { "data-label": "Account" }, accountLabel(b.account)),
        el("td", { class: "num", "data-label": "Opening" }, money(b.opening_minor, b.currency)),
        el("td", { class: "num debit", "data-label": "Debits" }, money(b.debits_minor, b.currency)),
        el("td", { class: "num credit", "data-label": "Credits" }, money(b.credits_minor, b.currency)),
        el("td", { class: "num closing", "data-label": "Closing" }, money(b.closing_minor, b.currency)),
        el("td", { "data-label": "Statement" }, b.party_id
          ? el("a", { class: "statement", download: "",
                      href: `/v1/ledger/statements/${b.party_id}.csv?period=${month}` }, `CSV ${month}`)
          : ""))));
  }

  // -- periods ------------------------------------------------------------------------------

  async function loadPeriods() {
    const res = await api("GET", "/v1/ledger/periods");
    if (!res.ok) {
      problem(why(res));
      return;
    }
    const periods = [...res.data].sort((a, b) => (a.period < b.period ? 1 : -1)); // newest first
    const select = $("period");
    const chosen = select.value;
    select.replaceChildren(el("option", { value: "" }, "All time"),
      ...periods.map((p) => el("option", { value: p.period }, `${p.period}${p.closed ? " (closed)" : ""}`)));
    select.value = periods.some((p) => p.period === chosen) ? chosen : "";
    $("periods").tBodies[0].replaceChildren(...periods.map(periodRow));
  }

  function periodRow(info) {
    const over = info.period < currentMonth(); // "YYYY-MM" strings sort as months
    const cell = el("td", { class: "close-cell" });
    const ask = () => cell.replaceChildren(
      el("span", { class: "confirm-text" }, `Close ${info.period} for good? It takes no more entries.`),
      el("div", { class: "actions" },
        el("button", { class: "danger confirm-close", type: "button", onclick: (e) => closePeriod(info, e) }, `Close ${info.period}`),
        el("button", { class: "secondary cancel-close", type: "button", onclick: idle }, "Cancel")));
    const idle = () => cell.replaceChildren(info.closed
      ? ""
      : over
        ? el("button", { class: "secondary close-period", type: "button", onclick: ask }, "Close…")
        : el("span", { class: "muted small" }, "in progress"));
    idle();
    return el("tr", { "data-period": info.period, "data-closed": info.closed ? "true" : "false" },
      el("td", null, info.period),
      el("td", null, el("span", { class: `tag ${info.closed ? "closed" : "open"}` }, info.closed ? "closed" : "open")),
      el("td", null, info.closed_at ? when(info.closed_at) : ""),
      cell);
  }

  async function closePeriod(info, event) {
    event.currentTarget.disabled = true;
    const res = await api("POST", `/v1/ledger/periods/${info.period}/close`);
    if (res.ok) done(`${info.period} is closed.`);
    else problem(why(res));
    await loadPeriods();
  }

  // -- wiring -------------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", () => {
    window.addEventListener("hashchange", showTab);
    showTab();
    $("return-status").addEventListener("change", () => loadReturns(false));
    $("more-returns").addEventListener("click", () => loadReturns(true));
    $("lead-form").addEventListener("submit", loadLead);
    $("balance-form").addEventListener("submit", loadBalances);
    $("period").addEventListener("change", () => {
      loadHealth();
      loadBalances();
    });
    loadReturns(false);
    loadPeriods();
    loadHealth();
    loadBalances();
  });
})();
