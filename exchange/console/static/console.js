// Shared by every console page, loaded before the page's own script: the JSON API with the
// session cookie (anything that changes state also sends the page's CSRF token; an expired
// session goes back to sign-in) and safe DOM building (values become text, never HTML).
"use strict";
window.Console = (() => {
  const CSRF = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  // {ok, status, data, serverTime}: serverTime is the answer's Date header in ms (NaN if none),
  // for pages that count down to server-side instants.
  async function api(method, path, body) {
    const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (method !== "GET") init.headers["X-CSRF-Token"] = CSRF;
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (err) {
      return { ok: false, status: 0, data: null, serverTime: NaN };
    }
    if (res.status === 401) {
      location.assign("/console/login?expired=1");
      return { ok: false, status: 401, data: null, serverTime: NaN };
    }
    const serverTime = Date.parse(res.headers.get("Date") || "");
    let data = null;
    try {
      data = await res.json();
    } catch (err) {
      data = null;
    }
    return { ok: res.ok, status: res.status, data, serverTime };
  }

  // el("p", {class: "x", onclick: f}, "text", child, [more]): attributes set as attributes,
  // on* as listeners, children appended as nodes or text.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // What to tell a person about a failed answer: the API's own message, else the status.
  function errorText(res) {
    const error = res.data && res.data.error;
    if (error && error.message) return error.message;
    return `Something went wrong (HTTP ${res.status || "offline"}).`;
  }

  return Object.freeze({ api, el, errorText });
})();
