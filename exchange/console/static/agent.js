// The agent's inbox: offers arrive live (Server-Sent Events), claim / accept / decline, a
// countdown to each offer's expiry, the leads I own with their contact details, mark contacted.
// Everything goes through the JSON API with the session cookie; anything that changes state
// sends the page's CSRF token. Values are put on the page as text, never as HTML.
"use strict";
(() => {
  const HEARTBEAT_MS = 60000; // presence: the profile's heartbeat_ttl_s is 90 s by default
  const POLL_MS = 30000; // the stream is a live view; the offer list stays the truth
  const RECONNECT_MS = 5000;
  const $ = (id) => document.getElementById(id);

  let offers = []; // pending offers, from GET /v1/agents/me/offers
  let leads = []; // owned leads, from GET /v1/agents/me/leads
  const answered = new Map(); // offer id -> {offer, text, tone}: kept on screen until dismissed
  let clockSkewMs = 0; // server clock minus ours, from the Date header
  let refreshSeq = 0;

  async function api(method, path, body) {
    const res = await Console.api(method, path, body);
    if (!Number.isNaN(res.serverTime)) clockSkewMs = res.serverTime - Date.now();
    return res;
  }

  const { el } = window.Console;

  // Field labels and formats from the verticals (GET /v1/verticals), by field name.
  const fieldInfo = new Map();
  let fieldsVersion = 0; // bumped when they arrive: cards drawn before show them again

  async function loadVerticals() {
    const res = await api("GET", "/v1/verticals");
    if (!res.ok || !Array.isArray(res.data)) return;
    for (const vertical of res.data) {
      for (const field of vertical.fields || []) {
        if (!fieldInfo.has(field.name)) {
          fieldInfo.set(field.name, { label: field.label, format: field.format, currency: vertical.currency });
        }
      }
    }
    fieldsVersion += 1;
    render();
  }

  function shown(name, value) {
    const info = fieldInfo.get(name) || {};
    if (info.format === "money" && typeof value === "number") {
      const money = new Intl.NumberFormat(undefined, { style: "currency", currency: info.currency || "USD" });
      return money.format(value / 10 ** money.resolvedOptions().maximumFractionDigits); // minor units
    }
    if (typeof value === "boolean") return value ? "yes" : "no";
    if (info.format === "enum") return String(value).replaceAll("_", " ");
    return typeof value === "object" ? JSON.stringify(value) : value;
  }

  function fieldList(...maps) {
    const rows = [];
    for (const map of maps) {
      for (const [name, value] of Object.entries(map || {})) {
        if (value === null || value === undefined || value === "") continue;
        const info = fieldInfo.get(name);
        rows.push(el("dt", null, (info && info.label) || name.replaceAll("_", " ")));
        rows.push(el("dd", { "data-field": name }, shown(name, value)));
      }
    }
    return rows.length ? el("dl", { class: "fields" }, rows) : null;
  }

  const shortId = (id) => String(id).slice(-8); // ids are time-ordered: the tail differs
  const clock = (iso) => new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

  function problem(text) {
    const box = $("problem");
    box.hidden = !text;
    box.textContent = text || "";
  }

  function live(on, text) {
    const badge = $("live");
    badge.className = on ? "live on" : "live off";
    badge.textContent = text || (on ? "Live" : "Reconnecting…");
  }

  // -- offers -------------------------------------------------------------------------------

  function lostText(res) {
    const error = (res.data && res.data.error) || {};
    const details = error.details || {};
    switch (error.code) {
      case "already_claimed":
        return details.owner_name ? `Taken by ${details.owner_name}` : "Taken by another agent";
      case "offer_expired":
        return "This offer expired.";
      case "not_offered":
        return "The offer moved on to another agent.";
      case "offer_not_pending":
        return "This offer is no longer open.";
      case "routing_closed":
        return "This lead is no longer being offered.";
      case "daily_cap_reached":
        return "You reached your daily cap.";
      case "concurrent_cap_reached":
        return "You own as many leads as you may at once.";
      default:
        return error.message || `Something went wrong (HTTP ${res.status || "offline"}).`;
    }
  }

  async function answer(offer, verb) {
    for (const button of document.querySelectorAll(`[data-offer-id="${offer.id}"] button`)) {
      button.disabled = true;
    }
    const res = await api("POST", `/v1/offers/${offer.id}/${verb}`);
    if (res.ok && verb === "decline") answered.set(offer.id, { offer, text: "You declined it.", tone: "" });
    else if (res.ok) answered.set(offer.id, { offer, text: "Yours: it is in My leads.", tone: "won" });
    else answered.set(offer.id, { offer, text: lostText(res), tone: "lost" });
    render();
    await refresh();
  }

  function offerCard(offer, done) {
    const take = offer.mode === "parallel" ? "claim" : "accept";
    const actions = done
      ? el("div", { class: "actions" },
          el("button", { class: "secondary dismiss", type: "button",
                         onclick: () => { answered.delete(offer.id); render(); } }, "Dismiss"))
      : el("div", { class: "actions" },
          el("button", { class: `take ${take}`, type: "button", onclick: () => answer(offer, take) },
             take === "claim" ? "Claim" : "Accept"),
          el("button", { class: "secondary decline", type: "button",
                         onclick: () => answer(offer, "decline") }, "Decline"));
    return el("li", { class: done ? "offer closed" : "offer", "data-offer-id": offer.id,
                      "data-lead-id": offer.lead_id },
      el("div", { class: "row" },
        el("span", { class: "title" }, `Lead ${shortId(offer.lead_id)}`),
        el("span", { class: "mode" }, offer.mode === "parallel" ? "first to claim" : "offered to you"),
        done ? null : el("span", { class: "countdown", "data-expires": offer.expires_at }, "")),
      fieldList(offer.fields),
      done ? el("p", { class: `result ${done.tone}`, role: "status" }, done.text) : null,
      actions);
  }

  // -- my leads -----------------------------------------------------------------------------

  async function markContacted(lead, button) {
    button.disabled = true;
    const res = await api("POST", `/v1/leads/${lead.lead_id}/outcomes`, { kind: "contacted" });
    if (!res.ok) {
      button.disabled = false;
      problem(lostText(res));
      return;
    }
    await refresh();
  }

  function leadCard(lead) {
    const pii = Object.assign({}, lead.pii || {});
    const name = [pii.first_name, pii.last_name].filter(Boolean).join(" ");
    const phone = pii.phone;
    const email = pii.email;
    delete pii.first_name;
    delete pii.last_name;
    delete pii.phone;
    delete pii.email;
    const contacted = lead.first_contact_at
      ? el("p", { class: "result won contacted" }, `Contacted at ${clock(lead.first_contact_at)}`)
      : el("div", { class: "actions" },
          el("button", { class: "mark-contacted", type: "button",
                         onclick: (event) => markContacted(lead, event.currentTarget) }, "Mark contacted"));
    return el("li", { class: "lead", "data-lead-id": lead.lead_id },
      el("div", { class: "row" },
        el("span", { class: "title" }, name || `Lead ${shortId(lead.lead_id)}`),
        lead.owned_since ? el("span", { class: "mode" }, `yours since ${clock(lead.owned_since)}`) : null),
      el("p", { class: "contact" },
        phone ? el("a", { class: "phone", href: `tel:${phone}` }, phone) : null,
        phone && email ? " · " : null,
        email ? el("a", { class: "email", href: `mailto:${email}` }, email) : null),
      fieldList(pii, lead.fields),
      contacted);
  }

  // -- drawing and refreshing ---------------------------------------------------------------

  // Cards are kept while what they show is unchanged: a refresh never swaps the button under
  // the agent's finger, and the countdowns tick in place.
  let cards = new Map(); // key -> {sig, node}

  function card(next, key, shows, make) {
    const sig = JSON.stringify([shows, fieldsVersion]);
    const hit = cards.get(key);
    const node = hit && hit.sig === sig ? hit.node : make();
    next.set(key, { sig, node });
    return node;
  }

  function place(list, nodes) {
    const same = list.children.length === nodes.length && nodes.every((n, i) => list.children[i] === n);
    if (!same) list.replaceChildren(...nodes);
  }

  function render() {
    const next = new Map();
    const open = offers.filter((o) => !answered.has(o.id));
    const offerCards = [...answered.values()]
      .map((a) => card(next, `done:${a.offer.id}`, [a.offer, a.text, a.tone], () => offerCard(a.offer, a)))
      .concat(open.map((o) => card(next, `offer:${o.id}`, o, () => offerCard(o, null))));
    const leadCards = leads.map((l) => card(next, `lead:${l.lead_id}`, l, () => leadCard(l)));
    cards = next;
    place($("offers"), offerCards);
    $("offer-count").textContent = String(open.length);
    $("no-offers").hidden = offerCards.length > 0;
    place($("leads"), leadCards);
    $("lead-count").textContent = String(leads.length);
    $("no-leads").hidden = leads.length > 0;
    tick();
  }

  async function refresh() {
    const mine = ++refreshSeq;
    const [o, l] = await Promise.all([
      api("GET", "/v1/agents/me/offers?status=pending&limit=100"),
      api("GET", "/v1/agents/me/leads?limit=100"),
    ]);
    if (mine !== refreshSeq) return; // a newer refresh is on its way
    if (o.ok) offers = o.data.items;
    if (l.ok) leads = l.data.items;
    const failed = [o, l].find((res) => !res.ok);
    const why = failed && failed.data && failed.data.error ? failed.data.error.message : null;
    problem(failed ? why || "Could not refresh the inbox; retrying." : null);
    render();
  }

  function tick() {
    const now = Date.now() + clockSkewMs;
    for (const node of document.querySelectorAll("[data-expires]")) {
      const left = Math.floor((Date.parse(node.dataset.expires) - now) / 1000);
      const card = node.closest("li");
      if (left <= 0) {
        node.textContent = "expired";
        node.classList.add("over");
        for (const button of card.querySelectorAll("button.take")) button.disabled = true;
        continue;
      }
      const minutes = Math.floor(left / 60);
      const seconds = String(left % 60).padStart(2, "0");
      node.textContent = minutes >= 60 ? `${Math.floor(minutes / 60)}h ${minutes % 60}m` : `${minutes}:${seconds}`;
    }
  }

  // -- presence and the stream --------------------------------------------------------------

  function showStatus(profile) {
    if (profile && profile.manual_status) $("available").checked = profile.manual_status === "available";
  }

  async function heartbeat() {
    const res = await api("POST", "/v1/agents/me/heartbeat");
    if (res.ok) showStatus(res.data);
  }

  async function setAvailable(event) {
    const status = event.currentTarget.checked ? "available" : "away";
    const res = await api("PUT", "/v1/agents/me/status", { status });
    if (res.ok) showStatus(res.data);
    else problem(lostText(res));
    await refresh();
  }

  function connect() {
    const stream = new EventSource("/v1/agents/me/stream");
    stream.addEventListener("ready", () => {
      live(true);
      refresh();
    });
    stream.addEventListener("offered", () => refresh());
    stream.addEventListener("assigned", () => refresh());
    // A reconnect whose missed events were not all kept: the lists are the truth.
    stream.addEventListener("replay_incomplete", () => refresh());
    stream.addEventListener("rescinded", (event) => {
      let data = {};
      try {
        data = JSON.parse(event.data) || {};
      } catch (err) {
        data = {};
      }
      const text = data.owner_name ? `Taken by ${data.owner_name}` : "Taken by another agent";
      for (const offer of offers) {
        if (offer.lead_id === data.lead_id && !answered.has(offer.id)) {
          answered.set(offer.id, { offer, text, tone: "lost" });
        }
      }
      render();
      refresh();
    });
    stream.onerror = () => {
      live(false);
      if (stream.readyState === EventSource.CLOSED) {
        // Refused (a 401 sends the page to sign-in through api()) or unreachable: try again.
        setTimeout(async () => {
          await refresh();
          connect();
        }, RECONNECT_MS);
      }
    };
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("available").addEventListener("change", setAvailable);
    refresh();
    loadVerticals();
    heartbeat();
    connect();
    setInterval(tick, 1000);
    setInterval(refresh, POLL_MS);
    setInterval(heartbeat, HEARTBEAT_MS);
  });
})();
