// The compare page of `splade-bridge serve --ui`: one query, several search modes side by side, through the
// service's own API (/indices, /search with explain). No framework, no build step; every text from the API is
// put in the page as text, never as markup.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const LABELS = {"bm25": "BM25", "splade": "SPLADE", "two-phase": "two-phase", "hybrid": "hybrid"};
  const DEFAULT_MODES = ["bm25", "splade", "hybrid"];
  const SHOWN_TERMS = 5;      // contributing terms listed per hit (all of them are highlighted)
  const EXPLAIN_TOP = 64;     // contributions asked for per hit: every query token, at the default query top-k
  let token = null;           // typed once, kept in memory only, sent as a bearer header
  let runs = 0;               // a newer run makes the answers of an older one stale
  const marks = new Map();    // "index\u0000query" -> Map(document id -> 1 relevant | 0 not)
  const qids = new Map();     // "index\u0000query" -> query id in the downloads, given once, never changed

  class ApiFailure extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v; else if (k === "text") node.textContent = v; else node.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  async function call(path, body) {
    const headers = {"accept": "application/json"};
    if (body !== undefined) headers["content-type"] = "application/json";
    if (token) headers["authorization"] = "Bearer " + token;
    let response;
    try {
      response = await fetch(path, {method: body === undefined ? "GET" : "POST", headers,
                                    body: body === undefined ? undefined : JSON.stringify(body)});
    } catch (e) {
      throw new ApiFailure(0, "the service did not answer (" + e.message + ")");
    }
    let data = null;
    try { data = await response.json(); } catch (e) { /* not JSON: described by the status */ }
    if (!response.ok) {
      throw new ApiFailure(response.status, (data && data.error) || ("HTTP " + response.status));
    }
    return data;
  }

  // -- words and terms ------------------------------------------------------------------------------
  const normal = (s) => s.normalize("NFD").replace(/\p{M}/gu, "").toLowerCase();
  const WORD = /[\p{L}\p{N}]+/gu;

  // The query term a word of text shows: a word starting with it ("cell" in "cells"), or with `pieces`, a word
  // holding a continuation piece past its start ("##ase" in "kinase": too loose to highlight a long text with).
  function termOf(word, terms, pieces = false) {
    const w = normal(word);
    for (const t of terms) {
      if (t.startsWith("##")) {
        if (pieces && t.length > 2 && w.indexOf(t.slice(2), 1) > 0) return t;
      } else if (t.length > 1 ? w.startsWith(t) : w === t) {
        return t;
      }
    }
    return null;
  }

  const inText = (term, text) => Array.from(text.matchAll(WORD)).some((m) => termOf(m[0], [term], true) !== null);

  function highlighted(text, terms) {
    const out = document.createDocumentFragment();
    let at = 0;
    for (const m of text.matchAll(WORD)) {
      const term = termOf(m[0], terms);
      if (term === null) continue;
      out.append(text.slice(at, m.index), el("mark", {"data-term": term, text: m[0]}));
      at = m.index + m[0].length;
    }
    out.append(text.slice(at));
    return out;
  }

  // -- the request, the address ---------------------------------------------------------------------
  function request() {
    const modes = Array.from(document.querySelectorAll("#modes input:checked")).map((i) => i.value);
    return {q: $("q").value.trim(), index: $("index").value.trim(), modes,
            size: Math.max(1, Math.min(100, parseInt($("size").value, 10) || 10))};
  }

  function fromAddress() {
    const p = new URLSearchParams(location.search);
    if (p.has("q")) $("q").value = p.get("q");
    if (p.has("index")) $("index").value = p.get("index");
    if (p.has("size")) $("size").value = p.get("size");
    const modes = p.has("modes") ? p.get("modes").split(",") : DEFAULT_MODES;
    for (const box of document.querySelectorAll("#modes input")) box.checked = modes.includes(box.value);
    return p.has("q") && $("q").value.trim() !== "";
  }

  function address(r) {
    return "?" + new URLSearchParams({q: r.q, index: r.index, modes: r.modes.join(","), size: String(r.size)});
  }

  // -- rendering ------------------------------------------------------------------------------------
  function showError(message) {
    $("error").textContent = message ? "error: " + message : "";
    $("error").hidden = !message;
  }

  function chips(tokens, query) {
    const box = $("chips");
    box.replaceChildren();
    const sorted = Object.entries(tokens).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    for (const [term, weight] of sorted) {
      const expansion = !inText(term, query);
      box.append(el("span", {class: "chip" + (expansion ? " expansion" : ""), "data-term": term,
                             "data-weight": weight.toFixed(4),
                             title: expansion ? "expansion: not in the query's text" : "in the query's text"},
                    term + " ", el("small", {text: weight.toFixed(2)})));
    }
    $("expansion").hidden = sorted.length === 0;
  }

  // How a hit moved against the first column: new, up N, down N, same.
  function change(id, rank, baseline) {
    const before = baseline.indexOf(id);
    if (before < 0) return {kind: "new", text: "new"};
    const delta = before + 1 - rank;
    if (delta > 0) return {kind: "up", text: "▲" + delta, from: before + 1};
    if (delta < 0) return {kind: "down", text: "▼" + -delta, from: before + 1};
    return {kind: "same", text: "=", from: before + 1};
  }

  function contributions(mode, hit) {
    const parts = hit.explain || [];
    return mode === "hybrid" ? parts.slice(2) : parts;  // a hybrid's first two are its bm25 and splade scores
  }

  // The text fields the model read (the first of several as a heading), highlighted with the hit's terms.
  function texts(source, fields, termNames) {
    const present = fields.filter((f) => typeof source[f] === "string" && source[f].trim() !== "");
    return present.map((f, i) => i === 0 && present.length > 1
      ? el("h3", {class: "title", "data-field": f}, highlighted(source[f], termNames))
      : el("p", {class: "text", "data-field": f}, highlighted(source[f], termNames)));
  }

  function renderHit(r, mode, hit, rank, baseline, baseLabel, fields) {
    const source = hit._source || {};
    const terms = contributions(mode, hit);
    const termNames = terms.map((t) => t.token);
    const moved = baseline ? change(hit._id, rank, baseline) : null;
    const head = el("div", {class: "hit-head"}, el("span", {class: "rank", text: String(rank)}),
      moved && el("span", {class: "change " + moved.kind, "data-change": moved.kind,
                           title: moved.from ? `rank ${moved.from} in ${baseLabel}` : `not in ${baseLabel}'s hits`,
                           text: moved.text}),
      el("code", {class: "id", text: hit._id}),
      el("span", {class: "score", title: mode === "hybrid" ? "fused score" : mode === "bm25" ? "BM25 score"
                                                           : "SPLADE score", text: hit._score.toFixed(3)}));
    const total = hit.splade_score || 0;
    const list = el("ol", {class: "terms", "aria-label": "top contributing terms"});
    for (const t of terms.slice(0, SHOWN_TERMS)) {
      const share = total > 0 ? Math.round(100 * t.contribution / total) : 0;
      list.append(el("li", {"data-term": t.token, "data-share": String(share)},
                     el("mark", {text: t.token}), " " + share + "%"));
    }
    const judged = marks.get(r.index + "\u0000" + r.q);
    const mark = judged ? judged.get(hit._id) : undefined;
    const judge = el("div", {class: "judge", role: "group", "aria-label": "judgment"},
      el("button", {type: "button", "data-mark": "1", "aria-pressed": String(mark === 1), text: "relevant"}),
      el("button", {type: "button", "data-mark": "0", "aria-pressed": String(mark === 0), text: "not relevant"}));
    return el("li", {class: "hit", "data-id": hit._id, "data-rank": String(rank)}, head,
      ...texts(source, fields, termNames),
      terms.length ? list : el("p", {class: "no-terms", text: "no SPLADE term in common with the query"}),
      el("details", {}, el("summary", {text: "_source"}), el("pre", {text: JSON.stringify(source, null, 2)})),
      judge);
  }

  function renderColumn(r, mode, answer, baseline, baseLabel) {
    const label = LABELS[mode] || mode;
    const column = el("section", {class: "column", "data-mode": mode, "aria-label": label + " hits"},
                      el("h2", {text: label}));
    if (answer.error) {
      column.append(el("p", {class: "column-error", role: "alert", text: "error: " + answer.error}));
      return column;
    }
    const data = answer.data;
    const how = [data.fusion, data.two_phase && "two-phase " + data.two_phase, data.took_ms + " ms",
                 data.partial && "PARTIAL: some shards did not answer"].filter(Boolean).join(" · ");
    column.append(el("p", {class: "meta", text: how + (baseline ? ` · marks against ${baseLabel}` : "")}));
    const hits = el("ol", {class: "hits"});
    data.hits.forEach((hit, i) => hits.append(renderHit(r, mode, hit, i + 1, baseline, baseLabel, data.text_fields)));
    column.append(data.hits.length ? hits : el("p", {text: "no hits"}));
    if (baseline) {
      const ids = new Set(data.hits.map((h) => h._id));
      const gone = baseline.filter((id) => !ids.has(id));
      if (gone.length) {
        column.append(el("p", {class: "gone"}, `gone (in ${baseLabel}, not here): `,
                          ...gone.map((id) => el("code", {"data-id": id, text: id + " "}))));
      }
    }
    return column;
  }

  // -- a comparison ---------------------------------------------------------------------------------
  async function run(r) {
    const mine = ++runs;
    const started = performance.now();
    showError("");
    if (!r.modes.length) return showError("choose at least one column");
    $("status").textContent = `searching ${r.index} …`;
    const answers = await Promise.all(r.modes.map((mode) =>
      call("/search", {text: r.q, index: r.index, mode, size: r.size, explain: true, explain_top: EXPLAIN_TOP})
        .then((data) => ({data}), (e) => ({error: e.message, status: e.status}))));
    if (mine !== runs) return;
    if (answers.some((a) => a.status === 401)) return askToken();
    const failed = answers.find((a) => a.error);
    if (failed) showError(failed.error + (failed.status ? ` (HTTP ${failed.status})` : ""));
    const explained = answers.find((a) => a.data && a.data.tokens);
    if (explained) chips(explained.data.tokens, r.q); else $("expansion").hidden = true;
    const base = answers[0].data ? answers[0].data.hits.map((h) => h._id) : null;
    const baseLabel = LABELS[r.modes[0]] || r.modes[0];
    $("columns").replaceChildren(...r.modes.map((mode, i) =>
      renderColumn(r, mode, answers[i], i > 0 ? base : null, baseLabel)));
    $("columns").style.setProperty("--columns", String(r.modes.length));
    const ms = Math.round(performance.now() - started);
    document.body.dataset.lastRunMs = String(ms);
    $("status").textContent = failed ? "" : `${r.modes.length} columns in ${ms} ms`;
  }

  function askToken() {
    $("auth").hidden = false;
    $("status").textContent = "";
    showError("this service needs a bearer token");
    $("token").focus();
  }

  async function loadIndices() {
    let served;
    try {
      served = await call("/indices");
    } catch (e) {
      if (e.status === 401) askToken(); else showError(e.message);
      return false;
    }
    $("indices").replaceChildren(...served.indices.map((name) => el("option", {value: name})));
    if (!$("index").value && served.default) $("index").value = served.default;
    $("index").title = served.patterns.length ? "also served: " + served.patterns.join(", ") : "";
    return true;
  }

  // -- judgments ------------------------------------------------------------------------------------
  function judge(button) {
    const hit = button.closest(".hit");
    const r = request();
    const key = r.index + "\u0000" + r.q;
    if (!marks.has(key)) marks.set(key, new Map());
    if (!qids.has(key)) qids.set(key, "q" + (qids.size + 1));
    const judged = marks.get(key);
    const value = Number(button.dataset.mark);
    const id = hit.dataset.id;
    if (judged.get(id) === value) judged.delete(id); else judged.set(id, value);
    for (const same of document.querySelectorAll(".hit")) {  // the document may be in several columns
      if (same.dataset.id !== id) continue;
      for (const b of same.querySelectorAll(".judge button")) {
        b.setAttribute("aria-pressed", String(judged.get(id) === Number(b.dataset.mark)));
      }
    }
    showJudged();
  }

  function judgedQueries() {
    const index = request().index;
    return Array.from(marks).filter(([key, docs]) => key.startsWith(index + "\u0000") && docs.size)
      .map(([key, docs]) => ({id: qids.get(key), text: key.slice(index.length + 1), docs}));
  }

  function showJudged() {
    const judged = judgedQueries();
    const count = judged.reduce((n, q) => n + q.docs.size, 0);
    $("judged").textContent = count ? `${count} judgments on ${judged.length} queries of ${request().index}: save ` +
      "both files as FOLDER/qrels/test.tsv and FOLDER/queries.jsonl, then run " +
      `splade-bridge eval --dataset FOLDER --index ${request().index}` : "No judgments yet.";
    $("download-qrels").disabled = $("download-queries").disabled = count === 0;
  }

  function download(name, text, type) {
    const link = el("a", {href: URL.createObjectURL(new Blob([text], {type})), download: name});
    document.body.append(link);
    link.click();
    link.remove();
  }

  function qrelsText() {
    const rows = ["query-id\tcorpus-id\tscore"];
    for (const q of judgedQueries()) for (const [id, value] of q.docs) rows.push(`${q.id}\t${id}\t${value}`);
    return rows.join("\n") + "\n";
  }

  const queriesText = () => judgedQueries().map((q) => JSON.stringify({_id: q.id, text: q.text})).join("\n") + "\n";

  // -- wiring ---------------------------------------------------------------------------------------
  async function start() {
    const asked = fromAddress();
    if (!(await loadIndices())) return;
    if (asked) await run(request());
    else $("q").focus();
  }

  $("search").addEventListener("submit", (event) => {
    event.preventDefault();
    const r = request();
    history.pushState(null, "", address(r));
    showJudged();
    run(r);
  });
  $("auth").addEventListener("submit", (event) => {
    event.preventDefault();
    token = $("token").value.trim() || null;
    $("token").value = "";
    $("auth").hidden = true;
    start();
  });
  $("columns").addEventListener("click", (event) => {
    const button = event.target.closest(".judge button");
    if (button) judge(button);
  });
  $("download-qrels").addEventListener("click", () => download("test.tsv", qrelsText(), "text/tab-separated-values"));
  $("download-queries").addEventListener("click", () => download("queries.jsonl", queriesText(), "application/jsonl"));
  window.addEventListener("popstate", () => { if (fromAddress()) run(request()); });
  document.addEventListener("keydown", (event) => {  // "/" jumps to the query box, as on most search pages
    if (event.key === "/" && !["INPUT", "TEXTAREA"].includes(document.activeElement.tagName)) {
      event.preventDefault();
      $("q").focus();
    }
  });
  start();
})();
