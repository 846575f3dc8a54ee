// pacs-gateway pages: the job page's live progress. No build step.
// Dates and times are written by the server (gateway/web/when.py) and never reworded here:
// a panel the script swaps in says "when" exactly as the first render did.
"use strict";

function setBar(bar, value, max) {
  if (!bar) return;
  bar.max = Math.max(max, 1);
  bar.value = value;
}

function watchJob(panel) {
  const url = panel.dataset.statusUrl;
  const announce = document.getElementById("job-announce");
  let state = panel.dataset.state;
  let version = panel.dataset.version;

  function numbers(d) {
    for (const el of panel.querySelectorAll("[data-field]")) {
      const v = d[el.dataset.field];
      if (v !== undefined) el.textContent = String(v);
    }
    const known = d.studies_total > 0; // before that the job is still asking the PACS
    for (const el of panel.querySelectorAll("[data-when-known]")) el.hidden = !known;
    for (const el of panel.querySelectorAll("[data-when-unknown]")) el.hidden = known;
    setBar(panel.querySelector('[data-bar="studies"]'), d.studies_done, d.studies_total);
    setBar(panel.querySelector('[data-bar="images"]'), d.images_received, d.images_expected);
  }

  async function poll() {
    let wait = 5000;
    try {
      // A long poll: the gateway answers when the job changed (or after a while).
      const r = await fetch(url + "?after=" + encodeURIComponent(version), {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
        cache: "no-store",
      });
      if (r.status === 401) {
        const body = await r.json();
        window.location.assign(body.login);
        return;
      }
      if (r.ok) {
        const d = await r.json();
        if (d.state !== state) {
          // A new state brings new sentences (and, at the end, the studies): new panel.
          panel.innerHTML = d.html;
          announce.textContent = d.headline + ". " + d.sentence;
          state = d.state;
          panel.dataset.state = state;
        } else {
          numbers(d);
          const sentence = panel.querySelector(".sentence");
          if (sentence && sentence.textContent !== d.sentence) sentence.textContent = d.sentence;
        }
        version = String(d.version);
        panel.dataset.version = version;
        panel.dataset.active = d.active ? "true" : "false";
        if (!d.active) return;
        wait = d.poll_after_ms;
      }
    } catch (e) {
      // The gateway did not answer: keep the page and try again a little later.
    }
    window.setTimeout(poll, wait);
  }

  if (panel.dataset.active === "true") {
    window.setTimeout(poll, Number(panel.dataset.pollAfter) || 250);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const panel = document.getElementById("job-panel");
  if (panel) watchJob(panel);
});
