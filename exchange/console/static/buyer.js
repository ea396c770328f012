// The advertiser's page: campaigns (filters, bid, caps, schedule; pause, resume, edit), leads
// bought and one purchase's details, why a lead went elsewhere (the trace), returns, balance
// and statement. Everything goes through the JSON API with the session cookie; anything that
// changes state sends the page's CSRF token. Values are put on the page as text, never as HTML.
// Money is integer minor units on the wire; amounts typed in major units are converted by
// string arithmetic, never through a float.
"use strict";
(() => {
  const WINDOWS = ["hour", "day", "week", "month"];
  const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
  const DAY_NAMES = { mon: "Mon", tue: "Tue", wed: "Wed", thu: "Thu", fri: "Fri", sat: "Sat", sun: "Sun" };
  const MINUTES_PER_DAY = 1440;
  const POLL_MS = 30000; // purchases, returns and money move while the page is open
  const $ = (id) => document.getElementById(id);

  let currency = "USD"; // the buyer's, from GET /v1/me
  let campaigns = []; // GET /v1/campaigns
  let purchases = []; // GET /v1/purchases
  let returns = []; // GET /v1/returns
  const fieldInfo = new Map(); // field name -> {label, format}, from GET /v1/verticals
  let editing = null; // the campaign as read just before editing (GET /v1/campaigns/{id})

  // -- plumbing (static/console.js) ---------------------------------------------------------

  const { api, el, errorText } = window.Console;

  function problem(text) {
    $("problem").hidden = !text;
    $("problem").textContent = text || "";
  }

  const shortId = (id) => String(id).slice(-8); // ids are time-ordered: the tail differs
  const when = (iso) =>
    iso ? new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "short" }) : "";

  // -- money: integer minor units <-> text, without floats -----------------------------------

  function digitsOf(code) {
    try {
      return new Intl.NumberFormat("en", { style: "currency", currency: code })
        .resolvedOptions().maximumFractionDigits;
    } catch (err) {
      return 2;
    }
  }

  // 1250 -> "12.50" (for inputs): string arithmetic, so no rounding on the way.
  function toMajor(minor, code) {
    const digits = digitsOf(code || currency);
    const sign = minor < 0 ? "-" : "";
    const text = String(Math.abs(minor)).padStart(digits + 1, "0");
    if (digits === 0) return sign + text;
    return `${sign}${text.slice(0, -digits)}.${text.slice(-digits)}`;
  }

  // "12.50" -> 1250; "" -> null; otherwise {error}. A sign is kept so the API judges it.
  function toMinor(text, code) {
    const digits = digitsOf(code || currency);
    const clean = String(text).trim().replace(/[\s,]/g, "").replace(/^([-+]?)[^\d.+-]+/, "$1");
    if (clean === "") return null;
    const match = /^([-+]?)(\d*)(?:\.(\d*))?$/.exec(clean);
    if (!match || (match[2] === "" && !match[3])) return { error: "an amount such as 12.50" };
    const fraction = match[3] || "";
    if (fraction.length > digits) {
      return { error: digits ? `at most ${digits} digits after the point` : "a whole amount" };
    }
    const minor = Number((match[2] || "0") + fraction.padEnd(digits, "0"));
    if (!Number.isSafeInteger(minor)) return { error: "too large" };
    return match[1] === "-" ? -minor : minor;
  }

  function money(minor, code) {
    if (minor === null || minor === undefined) return "";
    const c = code || currency;
    try {
      const format = new Intl.NumberFormat(undefined, { style: "currency", currency: c });
      return format.format(Number(toMajor(minor, c))); // display only
    } catch (err) {
      return `${toMajor(minor, c)} ${c}`;
    }
  }

  // -- reading campaigns aloud --------------------------------------------------------------

  const label = (field) => (fieldInfo.get(field) || {}).label || String(field).replaceAll("_", " ");
  const list = (values) => (values || []).map((v) => String(v).replaceAll("_", " ")).join(", ");

  function fieldValue(field, value) {
    const format = (fieldInfo.get(field) || {}).format;
    if (format === "money" && typeof value === "number") return money(value);
    if (typeof value === "boolean") return value ? "yes" : "no";
    if (format === "enum") return String(value).replaceAll("_", " ");
    return value;
  }

  function filterText(f) {
    const name = label(f.field);
    switch (f.kind) {
      case "states_in": return `${name} is one of ${list(f.states)}`;
      case "states_not_in": return `${name} is none of ${list(f.states)}`;
      case "zip_in": return `${name} is one of ${list(f.zips)}`;
      case "zip_prefix": return `${name} starts with ${list(f.prefixes)}`;
      case "zip_radius": return `${name} within ${f.miles} miles of ${f.center}`;
      case "enum_in": return `${name} is one of ${list(f.values)}`;
      case "enum_not_in": return `${name} is none of ${list(f.values)}`;
      case "boolean_is": return `${name}: ${f.value ? "yes" : "no"}`;
      case "number_range": {
        const low = f.minimum !== undefined && f.minimum !== null;
        const high = f.maximum !== undefined && f.maximum !== null;
        if (low && high) return `${name} from ${fieldValue(f.field, f.minimum)} to ${fieldValue(f.field, f.maximum)}`;
        if (low) return `${name} at least ${fieldValue(f.field, f.minimum)}`;
        if (high) return `${name} at most ${fieldValue(f.field, f.maximum)}`;
        return `${name}: any`;
      }
      case "age": return `${name}: aged ${f.min_years ?? 0} to ${f.max_years ?? "any"} years`;
      case "expression": return `where ${f.expression}`;
      case "score_range": return `score from ${f.minimum ?? 0} to ${f.maximum ?? 100}`;
      case "priority_in": return `priority is one of ${list(f.values)}`;
      default: return JSON.stringify(f);
    }
  }

  function capText(cap) {
    const per = cap.window === "concurrent" ? "at once" : `a ${cap.window}`;
    const parts = [];
    if (cap.max_count !== undefined && cap.max_count !== null) {
      parts.push(`${cap.max_count} ${cap.max_count === 1 ? "lead" : "leads"}`);
    }
    if (cap.max_spend_minor !== undefined && cap.max_spend_minor !== null) parts.push(money(cap.max_spend_minor));
    return `${parts.join(" and ")} ${per}`;
  }

  const hhmm = (minutes) =>
    `${String(Math.floor(minutes / 60)).padStart(2, "0")}:${String(minutes % 60).padStart(2, "0")}`;

  const hours = (intervals) => (intervals || [])
    .map((i) => (i.start === 0 && i.end === MINUTES_PER_DAY ? "all day" : `${hhmm(i.start)}–${hhmm(i.end)}`))
    .join(", ");

  // Runs of weekdays with the same hours read as one: "Mon–Fri 09:00–17:00; Sat 10:00–14:00".
  function scheduleText(schedule) {
    if (!schedule || !DAYS.some((d) => (schedule.days[d] || []).length)) return "Always open";
    const runs = [];
    for (const day of DAYS) {
      const text = hours(schedule.days[day]);
      const last = runs[runs.length - 1];
      if (last && last.text === text) last.to = day;
      else runs.push({ from: day, to: day, text });
    }
    const open = runs.filter((r) => r.text);
    const named = (r) => (r.from === r.to ? DAY_NAMES[r.from] : `${DAY_NAMES[r.from]}–${DAY_NAMES[r.to]}`);
    const text = open.length === 1 && open[0].from === "mon" && open[0].to === "sun"
      ? `Every day, ${open[0].text}`
      : open.map((r) => `${named(r)} ${r.text}`).join("; ");
    return `${text} (${schedule.timezone})`;
  }

  function bidText(c) {
    if (c.price_mode === "fixed") {
      const floor = c.floor_minor ? `, floor ${money(c.floor_minor)}` : "";
      return `Fixed price ${money(c.fixed_price_minor)}${floor}`;
    }
    return `Live bids from your endpoint, floor ${money(c.floor_minor)}`;
  }

  function returnsText(policy) {
    if (!policy || !policy.window_days) return "No returns";
    const rate = policy.max_rate_bps ? `, at most ${policy.max_rate_bps / 100}% a month` : "";
    return `Within ${policy.window_days} days: ${list(policy.reasons)}${rate}`;
  }

  function campaignCard(c) {
    const rows = [
      ["Bid", bidText(c), "bid"],
      ["Caps", c.caps.length ? c.caps.map(capText).join("; ") : "None", "caps"],
      ["Schedule", scheduleText(c.schedule), "schedule"],
      ["Filters", c.filters.length ? c.filters.map(filterText).join("; ") : "Every lead", "filters"],
      ["Returns", returnsText(c.returns), "returns"],
    ];
    return el("li", { class: c.active ? "campaign" : "campaign closed", "data-campaign-id": c.id },
      el("div", { class: "row" },
        el("span", { class: "title" }, c.name),
        el("span", { class: c.active ? "state on" : "state off" }, c.active ? "Active" : "Paused")),
      el("p", { class: "mode" }, `${c.vertical.replaceAll("_", " ")} · version ${c.version}`),
      el("dl", { class: "fields" },
        rows.map(([name, text, key]) => [el("dt", null, name), el("dd", { class: key }, text)])),
      el("div", { class: "actions" },
        el("button", { type: "button", class: c.active ? "secondary pause" : "secondary resume",
                       onclick: (e) => setActive(c, !c.active, e.currentTarget) },
           c.active ? "Pause" : "Resume"),
        el("button", { type: "button", class: "edit", onclick: () => edit(c.id) }, "Edit")));
  }

  async function setActive(c, active, button) {
    button.disabled = true;
    const res = await api("POST", `/v1/campaigns/${c.id}/${active ? "resume" : "pause"}`);
    if (!res.ok) problem(errorText(res));
    // A save sends the whole campaign: an open form must not undo the pause.
    else if (editing && editing.id === c.id) editing.active = res.data.active;
    await loadCampaigns();
  }

  function renderCampaigns() {
    $("campaigns").replaceChildren(...campaigns.map(campaignCard));
    $("campaign-count").textContent = String(campaigns.length);
    $("no-campaigns").hidden = campaigns.length > 0;
  }

  const campaignName = (id) => (campaigns.find((c) => c.id === id) || {}).name || `Campaign ${shortId(id)}`;

  // -- the editor -----------------------------------------------------------------------------

  function input(attrs) {
    return el("input", Object.assign({ autocomplete: "off" }, attrs));
  }

  function fieldError(path) {
    return el("p", { class: "field-error", "data-error-for": path, hidden: true });
  }

  function capRow(cap) {
    const windows = editing && editing.call ? WINDOWS.concat(["concurrent"]) : WINDOWS;
    const select = el("select", { name: "window", "aria-label": "Window" },
      windows.map((w) => el("option", { value: w, selected: w === cap.window }, `per ${w === "concurrent" ? "call at once" : w}`)));
    const row = el("div", { class: "cap-row" },
      el("div", { class: "cap-inputs" },
        select,
        el("label", null, "Leads",
          input({ name: "max_count", inputmode: "numeric", value: cap.max_count ?? "" })),
        el("label", null, "Spend",
          input({ name: "max_spend", inputmode: "decimal",
                  value: cap.max_spend_minor === undefined || cap.max_spend_minor === null ? "" : toMajor(cap.max_spend_minor) })),
        el("button", { type: "button", class: "secondary remove", "aria-label": "Remove this cap",
                       onclick: () => { row.remove(); numberCaps(); } }, "Remove")),
      el("p", { class: "field-error cap-error", hidden: true }),
      el("p", { class: "field-error cap-count-error", hidden: true }),
      el("p", { class: "field-error cap-spend-error", hidden: true }));
    return row;
  }

  // Error slots follow the rows' order, which is the order of the caps sent.
  function numberCaps() {
    [...$("cap-rows").children].forEach((row, i) => {
      row.querySelector(".cap-error").dataset.errorFor = `caps[${i}]`;
      row.querySelector(".cap-count-error").dataset.errorFor = `caps[${i}].max_count`;
      row.querySelector(".cap-spend-error").dataset.errorFor = `caps[${i}].max_spend_minor`;
      row.querySelector('[name="max_count"]').dataset.path = `caps[${i}].max_count`;
      row.querySelector('[name="max_spend"]').dataset.path = `caps[${i}].max_spend_minor`;
      row.querySelector('[name="window"]').dataset.path = `caps[${i}].window`;
    });
  }

  function intervalRow(day, interval) {
    const row = el("div", { class: "interval" },
      input({ name: "start", value: hhmm(interval.start), inputmode: "numeric", "aria-label": `${DAY_NAMES[day]} from`, size: 5 }),
      "–",
      input({ name: "end", value: hhmm(interval.end), inputmode: "numeric", "aria-label": `${DAY_NAMES[day]} to`, size: 5 }),
      el("button", { type: "button", class: "secondary small remove", "aria-label": "Remove",
                     onclick: () => { row.remove(); numberIntervals(day); } }, "×"),
      fieldError(""));
    row.extra = Object.assign({}, interval); // keeps what the form does not show (max_concurrent)
    return row;
  }

  function numberIntervals(day) {
    [...document.querySelectorAll(`.day-row[data-day="${day}"] .interval`)].forEach((row, i) => {
      row.querySelector(".field-error").dataset.errorFor = `schedule.days.${day}[${i}]`;
    });
  }

  function dayRow(day, intervals) {
    const holder = el("div", { class: "intervals" });
    const row = el("div", { class: "day-row", "data-day": day },
      el("span", { class: "day" }, DAY_NAMES[day]),
      holder,
      el("button", { type: "button", class: "secondary small add-interval",
                     onclick: () => {
                       holder.append(intervalRow(day, { start: 540, end: 1020 }));
                       numberIntervals(day);
                     } }, "+ hours"),
      fieldError(`schedule.days.${day}`));
    holder.append(...intervals.map((i) => intervalRow(day, i)));
    return row;
  }

  function clearErrors() {
    for (const node of document.querySelectorAll("#campaign-form .field-error")) {
      node.hidden = true;
      node.textContent = "";
    }
    for (const node of document.querySelectorAll("#campaign-form [aria-invalid]")) node.removeAttribute("aria-invalid");
    $("form-error").hidden = true;
  }

  // The slot for an error's path: the path itself, else its nearest parent with a slot
  // ("filters[0].field" -> "filters"); none: the form's own message.
  function showError(path, reason) {
    let at = path;
    while (at) {
      const slot = [...document.querySelectorAll("#campaign-form .field-error")]
        .find((node) => node.dataset.errorFor === at);
      if (slot) {
        slot.textContent = slot.textContent ? `${slot.textContent} ${reason}` : reason;
        slot.hidden = false;
        const fieldNode = [...document.querySelectorAll("#campaign-form [data-path]")]
          .find((node) => node.dataset.path === at);
        if (fieldNode) fieldNode.setAttribute("aria-invalid", "true");
        return;
      }
      const parent = at.replace(/(\.[^.[\]]+|\[\d+\])$/, "");
      at = parent === at ? "" : parent;
    }
    const box = $("form-error");
    box.hidden = false;
    box.textContent = `${box.textContent ? box.textContent + " " : ""}${path ? path + ": " : ""}${reason}`;
  }

  function firstError() {
    const shown = [...document.querySelectorAll("#campaign-form .field-error, #form-error")].find((n) => !n.hidden);
    if (shown) shown.scrollIntoView({ block: "center" });
  }

  async function edit(id) {
    problem(null);
    const res = await api("GET", `/v1/campaigns/${id}`); // fresh: send back what is stored now
    if (!res.ok) {
      problem(errorText(res));
      return;
    }
    editing = res.data;
    const c = editing;
    clearErrors();
    $("form-error").textContent = "";
    $("editor-title").textContent = `Edit ${c.name}`;
    $("f-name").value = c.name;
    for (const node of document.querySelectorAll("#editor .currency")) node.textContent = currency;
    $("f-mode").textContent = c.price_mode === "fixed"
      ? "Fixed price: every lead the campaign takes costs the price below."
      : "Live bids: your endpoint names the price; bids under the floor are dropped.";
    $("fixed-price-field").hidden = c.price_mode !== "fixed";
    $("f-price").value = c.fixed_price_minor === null ? "" : toMajor(c.fixed_price_minor);
    $("f-floor").value = toMajor(c.floor_minor);
    $("f-timezone").textContent = c.timezone;
    $("cap-rows").replaceChildren(...c.caps.map(capRow));
    numberCaps();
    const schedule = c.schedule || { timezone: c.timezone, days: {} };
    $("f-schedule-tz").value = schedule.timezone;
    $("schedule-days").replaceChildren(...DAYS.map((d) => dayRow(d, schedule.days[d] || [])));
    DAYS.forEach(numberIntervals);
    $("f-filters").value = JSON.stringify(c.filters, null, 2);
    $("editor").hidden = false;
    $("f-name").focus();
    $("editor").scrollIntoView({ block: "start" });
  }

  function minutesOf(text) {
    const match = /^\s*(\d{1,2}):(\d{2})\s*$/.exec(text);
    if (!match) return null;
    const minutes = Number(match[1]) * 60 + Number(match[2]);
    return Number(match[2]) < 60 && minutes <= MINUTES_PER_DAY ? minutes : null;
  }

  // The whole campaign as it was read, with the form's changes; local problems as [path, reason].
  function fromForm() {
    const errors = [];
    const body = Object.assign({}, editing);
    for (const key of ["id", "created_at", "updated_at"]) delete body[key];
    // body.version stays: the version this edit was made from. If someone saved meanwhile the
    // exchange answers 409 version_conflict instead of overwriting their change.
    body.name = $("f-name").value.trim();
    if (editing.price_mode === "fixed") {
      const price = toMinor($("f-price").value);
      if (price && price.error) errors.push(["fixed_price_minor", price.error]);
      else body.fixed_price_minor = price;
    }
    const floor = toMinor($("f-floor").value);
    if (floor && floor.error) errors.push(["floor_minor", floor.error]);
    else body.floor_minor = floor === null ? 0 : floor;

    body.caps = [...$("cap-rows").children].map((row, i) => {
      const cap = { window: row.querySelector('[name="window"]').value };
      const count = row.querySelector('[name="max_count"]').value.trim();
      if (count !== "") {
        if (/^-?\d+$/.test(count)) cap.max_count = Number(count);
        else errors.push([`caps[${i}].max_count`, "a whole number of leads"]);
      }
      const spend = toMinor(row.querySelector('[name="max_spend"]').value);
      if (spend && spend.error) errors.push([`caps[${i}].max_spend_minor`, spend.error]);
      else if (spend !== null) cap.max_spend_minor = spend;
      if (count === "" && spend === null) {
        errors.push([`caps[${i}]`, "give a number of leads, a spend, or both (or remove the cap)"]);
      }
      return cap;
    });

    const days = {};
    for (const day of DAYS) {
      const rows = [...document.querySelectorAll(`.day-row[data-day="${day}"] .interval`)];
      if (!rows.length) continue;
      days[day] = rows.map((row, i) => {
        const start = minutesOf(row.querySelector('[name="start"]').value);
        const end = minutesOf(row.querySelector('[name="end"]').value);
        if (start === null || end === null || start === MINUTES_PER_DAY) {
          errors.push([`schedule.days.${day}[${i}]`, "times are HH:MM, from 00:00 to 24:00"]);
        }
        return Object.assign({}, row.extra, { start, end });
      });
    }
    body.schedule = Object.keys(days).length
      ? { timezone: $("f-schedule-tz").value.trim() || editing.timezone, days }
      : null;

    try {
      body.filters = JSON.parse($("f-filters").value || "[]");
      if (!Array.isArray(body.filters)) errors.push(["filters", "a JSON list of filters: [ ... ]"]);
    } catch (err) {
      errors.push(["filters", `not valid JSON: ${err.message}`]);
    }
    return { body, errors };
  }

  async function save(event) {
    event.preventDefault();
    clearErrors();
    $("form-error").textContent = "";
    const { body, errors } = fromForm();
    if (errors.length) {
      for (const [path, reason] of errors) showError(path, reason);
      firstError();
      return;
    }
    const button = $("save-campaign");
    button.disabled = true;
    const res = await api("PUT", `/v1/campaigns/${editing.id}`, body);
    button.disabled = false;
    if (!res.ok) {
      const error = (res.data && res.data.error) || {};
      if (error.fields && error.fields.length) {
        for (const f of error.fields) showError(f.path, f.reason);
      } else {
        showError("", errorText(res));
      }
      firstError();
      return;
    }
    $("editor").hidden = true;
    editing = null;
    problem(null);
    await loadCampaigns();
    const card = document.querySelector(`li.campaign[data-campaign-id="${res.data.id}"]`);
    if (card) {
      card.append(el("p", { class: "result won saved", role: "status" }, `Saved: version ${res.data.version}.`));
      card.scrollIntoView({ block: "nearest" });
    }
  }

  function cancel() {
    $("editor").hidden = true;
    editing = null;
  }

  // -- purchases, details and returns -------------------------------------------------------

  function returnable(p) {
    return !p.return_id && p.status === "delivered" && p.returnable_until && Date.parse(p.returnable_until) > Date.now();
  }

  function purchaseStatus(p) {
    if (p.return_status) return `return ${p.return_status}`;
    return p.status;
  }

  function renderPurchases() {
    const rows = [...purchases].reverse().map((p) => // newest first
      el("tr", { "data-sale-id": p.sale_id, "data-lead-id": p.lead_id },
        el("td", null, when(p.delivered_at)),
        el("td", null, el("code", { title: p.lead_id }, shortId(p.lead_id))),
        el("td", null, campaignName(p.campaign_id)),
        el("td", { class: "num" }, money(p.price_minor, p.currency)),
        el("td", { class: "status" }, purchaseStatus(p)),
        el("td", null, el("button", { type: "button", class: "secondary small details",
                                      onclick: () => showPurchase(p.sale_id) }, "Details"))));
    $("purchases").tBodies[0].replaceChildren(...rows);
    $("purchase-count").textContent = String(purchases.length);
    $("no-purchases").hidden = purchases.length > 0;
    $("purchases").parentElement.hidden = purchases.length === 0;
  }

  async function showPurchase(saleId) {
    const box = $("purchase-detail");
    const res = await api("GET", `/v1/purchases/${saleId}`);
    if (!res.ok) {
      box.replaceChildren(el("p", { class: "error" }, errorText(res)));
      box.hidden = false;
      return;
    }
    const p = res.data;
    const rows = Object.entries(p.fields || {}).map(([name, value]) => [
      el("dt", null, label(name)),
      el("dd", { "data-field": name }, typeof value === "object" ? JSON.stringify(value) : fieldValue(name, value)),
    ]);
    const campaign = campaigns.find((c) => c.id === p.campaign_id);
    const reasons = (campaign && campaign.returns && campaign.returns.reasons) || [];
    let returnPart;
    if (p.return_id) {
      returnPart = el("p", { class: "result" }, `Return ${p.return_status}.`);
    } else if (returnable(p) && reasons.length) {
      const reason = el("select", { id: "return-reason", name: "reason" },
        reasons.map((r) => el("option", { value: r }, r.replaceAll("_", " "))));
      const note = input({ id: "return-note", name: "note", maxlength: 1000, placeholder: "optional" });
      const message = el("p", { class: "field-error", id: "return-error", hidden: true });
      returnPart = el("form", { class: "return-form", id: "return-form",
                                onsubmit: (e) => fileReturn(e, p, reason, note, message) },
        el("h3", null, "Return this lead"),
        el("p", { class: "muted small" }, `Until ${when(p.returnable_until)}.`),
        el("label", { for: "return-reason" }, "Reason"), reason,
        el("label", { for: "return-note" }, "Note"), note,
        message,
        el("div", { class: "actions" }, el("button", { type: "submit", id: "file-return" }, "File the return")));
    } else {
      returnPart = el("p", { class: "muted" }, p.returnable_until ? "The return window is closed." : "This campaign takes no returns.");
    }
    box.replaceChildren(...[
      el("div", { class: "row" },
        el("h3", null, `Lead ${shortId(p.lead_id)}`),
        el("button", { type: "button", class: "secondary small", onclick: () => { box.hidden = true; } }, "Close")),
      el("p", { class: "muted" },
        `${campaignName(p.campaign_id)} · ${money(p.price_minor, p.currency)} · delivered ${when(p.delivered_at)}`,
        p.reference ? ` · your reference ${p.reference}` : ""),
      el("p", { class: "muted small" }, "Lead id ", el("code", { class: "lead-id" }, p.lead_id)),
      p.pii === "purged" ? el("p", { class: "notice" }, "This lead's personal data was erased after the retention period.") : null,
      rows.length ? el("dl", { class: "fields" }, rows) : null,
      returnPart].filter(Boolean));
    box.dataset.saleId = p.sale_id;
    box.hidden = false;
    box.scrollIntoView({ block: "nearest" });
  }

  async function fileReturn(event, p, reason, note, message) {
    event.preventDefault();
    const button = event.currentTarget.querySelector("button[type=submit]");
    button.disabled = true;
    const body = { sale_id: p.sale_id, reason: reason.value };
    if (note.value.trim()) body.note = note.value.trim();
    const res = await api("POST", "/v1/returns", body);
    if (!res.ok) {
      button.disabled = false;
      const error = (res.data && res.data.error) || {};
      message.textContent = (error.fields || []).map((f) => f.reason).join(" ") || errorText(res);
      message.hidden = false;
      return;
    }
    await Promise.all([loadPurchases(), loadReturns()]);
    await showPurchase(p.sale_id);
  }

  function renderReturns() {
    const rows = [...returns].reverse().map((r) =>
      el("tr", { "data-return-id": r.id, "data-lead-id": r.lead_id },
        el("td", null, when(r.requested_at)),
        el("td", null, el("code", { title: r.lead_id }, shortId(r.lead_id))),
        el("td", null, r.reason.replaceAll("_", " ")),
        el("td", { class: "num" }, money(r.price_minor, r.currency)),
        el("td", { class: `status ${r.status}` }, r.status,
           r.decision_note ? el("span", { class: "muted small" }, ` (${r.decision_note})`) : null)));
    $("returns").tBodies[0].replaceChildren(...rows);
    $("return-count").textContent = String(returns.length);
    $("no-returns").hidden = returns.length > 0;
    $("returns").parentElement.hidden = returns.length === 0;
  }

  // -- why didn't I get this lead -----------------------------------------------------------

  const WINDOW_WORD = { hour: "hour", day: "day", week: "week", month: "month" };

  function explain(reason) {
    if (reason === null || reason === undefined) return "Eligible; the sale was still open.";
    const [code, arg] = reason.split(":");
    switch (code) {
      case "sold": return "You bought this lead.";
      case "campaign_paused": return "The campaign was paused.";
      case "schedule_closed": return "The lead came outside the campaign's schedule.";
      case "filtered":
        if (arg === "expression") return "The campaign's expression filter did not match the lead.";
        if (arg === "score") return "The lead's score was outside the campaign's score range.";
        if (arg === "priority") return "The lead's priority was not one the campaign takes.";
        return `A filter on ${label(arg)} did not match (or the lead had no ${label(arg)}).`;
      case "duplicate": return "You had already bought this person.";
      case "cap_reached": return `The campaign's lead cap for the ${WINDOW_WORD[arg] || arg} was used up.`;
      case "budget_reached": return `The campaign's spend cap for the ${WINDOW_WORD[arg] || arg} could not cover the lead.`;
      case "insufficient_balance": return "Your balance and credit could not pay for the lead.";
      case "exclusivity_conflict": return "The lead was sold exclusive or shared, and the campaign takes the other kind.";
      case "below_floor": return "The bid was under the campaign's floor or the supplier's minimum payout.";
      case "ping_timeout": return "Your endpoint did not answer the ping in time.";
      case "ping_error": return "The ping to your endpoint failed (a network error, a 5xx or an unreadable answer).";
      case "ping_rejected": return "Your endpoint answered the ping with no bid.";
      case "post_rejected": return "Your endpoint refused the posted lead.";
      case "post_error": return "The post to your endpoint failed.";
      case "not_better_than_winner": return "The campaign bid, but another buyer's bid won.";
      default: return "See the reason codes in the documentation.";
    }
  }

  async function why(event) {
    event.preventDefault();
    const out = $("why-result");
    const leadId = $("why-lead").value.trim();
    if (!/^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i.test(leadId)) {
      out.replaceChildren(el("p", { class: "field-error" }, "A lead id looks like 0192f0c4-5a1e-7c3d-9b2a-1234567890ab."));
      return;
    }
    const res = await api("GET", `/v1/leads/${leadId}/trace`);
    if (res.status === 403) {
      out.replaceChildren(el("p", { class: "notice" },
        "None of your campaigns was considered for this lead: its vertical, state or zip code ruled them all out before the auction."));
      return;
    }
    if (!res.ok) {
      out.replaceChildren(el("p", { class: "error" }, res.status === 404 ? "No lead with this id." : errorText(res)));
      return;
    }
    // The last word on each campaign: the post's, else the ping's.
    const last = new Map();
    for (const stage of res.data.stages) {
      for (const entry of stage.entries) last.set(entry.campaign_id, { stage: stage.stage, entry });
    }
    const items = [...last.values()].map(({ stage, entry }) =>
      el("li", { class: entry.reason === "sold" ? "trace-entry won" : "trace-entry", "data-campaign-id": entry.campaign_id },
        el("div", { class: "row" },
          el("span", { class: "title" }, campaignName(entry.campaign_id)),
          el("code", { class: "reason" }, entry.reason || "open")),
        el("p", { class: "explain" }, explain(entry.reason)),
        entry.bid_minor !== undefined && entry.bid_minor !== null
          ? el("p", { class: "muted small" }, `Bid ${money(entry.bid_minor)} · ${stage}`) : null));
    out.replaceChildren(el("ul", { class: "cards trace" }, items));
  }

  // -- account --------------------------------------------------------------------------------

  async function loadAccount() {
    const res = await api("GET", "/v1/account");
    if (!res.ok) return problem(errorText(res));
    $("balance").textContent = money(res.data.balance_minor);
    $("credit").textContent = money(res.data.credit_limit_minor);
    $("spendable").textContent = money(res.data.spendable_minor);
    $("balance").classList.toggle("bad", res.data.balance_minor < 0);
  }

  function statementLink() {
    const period = $("statement-period").value; // YYYY-MM
    const link = $("statement-link");
    link.href = `/v1/ledger/me/statement.csv?period=${encodeURIComponent(period)}`;
    link.setAttribute("download", `statement-${period}.csv`);
  }

  // -- loading --------------------------------------------------------------------------------

  async function loadCampaigns() {
    const res = await api("GET", "/v1/campaigns?limit=500");
    if (!res.ok) return problem(errorText(res));
    campaigns = res.data.items;
    renderCampaigns();
    renderPurchases(); // campaign names
  }

  async function loadPurchases() {
    const res = await api("GET", "/v1/purchases?limit=500");
    if (!res.ok) return problem(errorText(res));
    purchases = res.data.items;
    renderPurchases();
  }

  async function loadReturns() {
    const res = await api("GET", "/v1/returns?limit=500");
    if (!res.ok) return problem(errorText(res));
    returns = res.data.items;
    renderReturns();
  }

  async function loadBasics() {
    const [me, verticals] = await Promise.all([api("GET", "/v1/me"), api("GET", "/v1/verticals")]);
    if (me.ok && me.data.currency) currency = me.data.currency;
    if (verticals.ok && Array.isArray(verticals.data)) {
      for (const vertical of verticals.data) {
        for (const field of vertical.fields || []) {
          if (!fieldInfo.has(field.name)) fieldInfo.set(field.name, { label: field.label, format: field.format });
        }
      }
    }
  }

  document.addEventListener("DOMContentLoaded", async () => {
    $("campaign-form").addEventListener("submit", save);
    $("cancel-edit").addEventListener("click", cancel);
    $("add-cap").addEventListener("click", () => {
      $("cap-rows").append(capRow({ window: "day" }));
      numberCaps();
    });
    $("why-form").addEventListener("submit", why);
    const refresh = () => Promise.all([loadPurchases(), loadReturns(), loadAccount()]);
    $("refresh-purchases").addEventListener("click", refresh);
    setInterval(refresh, POLL_MS);
    $("statement-period").value = new Date().toISOString().slice(0, 7); // this UTC month
    $("statement-period").addEventListener("change", statementLink);
    $("statement-form").addEventListener("submit", (e) => e.preventDefault());
    statementLink();
    await loadBasics(); // the currency and labels first: everything shows them
    await Promise.all([loadAccount(), loadCampaigns(), loadPurchases(), loadReturns()]);
    document.body.dataset.ready = "true";
  });
})();
