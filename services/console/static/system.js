// The System page's live table (/console/system): every 3 s, fetches the
// table alone (?part=table) and puts it in place of the old one. The time
// of the last update is shown, not announced; the status line (a polite
// live region) speaks only when an instance's health or readiness changes
// or the table cannot be updated, so a screen reader is not read the
// whole table every 3 s. Paused while the tab is hidden.
"use strict";

(function () {
  const EVERY_MS = 3000;
  const region = document.getElementById("instances-region");
  const updated = document.getElementById("updated");
  const status = document.getElementById("system-status");
  if (!region || !updated || !status) {
    return;
  }
  let timer = null;
  let busy = false; // a fetch is under way
  let stopped = false; // signed out: no more fetches
  let failing = false;

  // "service instance" → "up, ready", for the rows of `root`.
  function states(root) {
    const found = new Map();
    for (const row of root.querySelectorAll("tr[data-instance]")) {
      const health = row.querySelector(".health");
      const readiness = row.querySelector(".readiness");
      const key = row.dataset.service + " " + row.dataset.instance;
      found.set(key, (health ? health.textContent : "") + ", " + (readiness ? readiness.textContent : ""));
    }
    return found;
  }

  function changes(before, after) {
    const said = [];
    for (const [key, state] of after) {
      if (before.has(key) && before.get(key) !== state) {
        said.push(key + ": " + state);
      } else if (!before.has(key)) {
        said.push(key + ": new, " + state);
      }
    }
    for (const key of before.keys()) {
      if (!after.has(key)) {
        said.push(key + ": gone");
      }
    }
    return said;
  }

  async function refresh() {
    timer = null;
    busy = true;
    try {
      const response = await fetch("/console/system?part=table", {
        credentials: "same-origin",
        cache: "no-store",
        redirect: "error",
      });
      if (response.status === 403) {
        status.textContent = "Signed out: reload the page to sign in again.";
        stopped = true;
        return;
      }
      if (!response.ok) {
        throw new Error("the console answered " + response.status);
      }
      const html = await response.text();
      const fresh = document.createElement("div");
      fresh.innerHTML = html;
      const said = changes(states(region), states(fresh));
      region.replaceChildren(...fresh.childNodes);
      updated.textContent = "Updated " + new Date().toLocaleTimeString();
      if (failing) {
        said.unshift("Updating again.");
        failing = false;
      }
      if (said.length > 0) {
        status.textContent = said.join("; ");
      }
    } catch (err) {
      if (!failing) {
        status.textContent = "The table cannot be updated (" + err.message + "); trying again.";
        failing = true;
      }
    } finally {
      busy = false;
    }
    schedule();
  }

  function schedule() {
    if (timer === null && !busy && !stopped && !document.hidden) {
      timer = window.setTimeout(refresh, EVERY_MS);
    }
  }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      if (timer !== null) {
        window.clearTimeout(timer);
        timer = null;
      }
    } else if (timer === null && !busy && !stopped) {
      refresh();
    }
  });

  schedule();
})();
