// The prediction page: the model's summary from /info, and a form per task that calls /predict.
// Plain DOM code, no framework and nothing fetched from outside this server.
"use strict";

const $ = (id) => document.getElementById(id);
const METRICS = [  // [key, label, format]: the headline figures shown first, in this order
  ["accuracy", "accuracy", "percent"], ["macro_f1", "macro F1", "fixed3"], ["top5_accuracy", "top-5 accuracy", "percent"],
  ["mse", "MSE (standardised)", "fixed4"], ["mae", "MAE (standardised)", "fixed4"], ["mase", "MASE", "fixed3"],
  ["loss", "loss", "fixed3"], ["n", "test examples", "count"],
];
let info = null;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value; else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function format(value, how) {
  if (how === "percent") return (100 * value).toFixed(1) + "%";
  if (how === "fixed3") return value.toFixed(3);
  if (how === "fixed4") return value.toFixed(4);
  return String(Math.round(value));
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

async function call(url, options) {
  // The JSON answer, or an Error carrying the API's one-line detail (every 4xx/5xx has one).
  let response;
  try {
    response = await fetch(url, options);
  } catch (err) {
    throw new Error("the server did not answer (" + err.message + "); is `transferkit serve` still running?");
  }
  let body = null;
  try { body = await response.json(); } catch (err) { /* not JSON: say the status below */ }
  if (!response.ok) {
    const detail = body && body.detail ? body.detail : response.statusText;
    throw new Error(`${response.status}: ${detail}`);
  }
  return body;
}

async function waitUntilReady() {
  for (;;) {
    const response = await fetch("/ready").catch(() => null);
    if (response && response.ok) return;
    if (response && response.status === 503) {
      const body = await response.json().catch(() => ({}));
      if (body.status === "failed") throw new Error(body.detail);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

function showSummary() {
  document.title = `${info.run} · transferkit`;
  $("run-name").textContent = info.run;
  const facts = $("run-facts");
  facts.textContent = [info.task, info.backbone && `backbone ${info.backbone}`, info.strategy && `strategy ${info.strategy}`]
    .filter(Boolean).join(" · ");
  facts.append(el("span", {class: "badge", text: info.backend + (info.precision ? " " + info.precision : "")}));
  $("report-link").hidden = !info.report;
  const cards = $("metrics");
  const metrics = info.metrics || {};
  for (const [key, label, how] of METRICS) {
    if (typeof metrics[key] !== "number") continue;
    const name = key === "n" && info.estimate ? `examples, ${info.estimate}` : label;
    cards.append(el("div", {class: "card", "data-metric": key},
      el("div", {class: "big", text: format(metrics[key], how)}), el("div", {class: "label", text: name})));
  }
  const classes = $("classes");
  if (info.classes) {
    classes.append(`${info.classes.length} classes: `);
    for (const name of info.classes) classes.append(el("span", {class: "chip", text: name}));
  } else if (info.series) {
    classes.append(`Forecasts the next ${info.horizon} steps of ${info.series.join(", ")} from the last ${info.lookback}.`);
  }
  $("summary").hidden = false;
  const limits = info.limits;
  $("limits").textContent = `Limits: ${limits.max_body_bytes / 1048576} MB per request, ${limits.max_batch} items per ` +
    `request, ${limits.timeout_s} s per request; model calls batch up to ${limits.batch_max_size} items.`;
}

function bars(top) {
  const box = el("div", {class: "bars"});
  for (const {label, probability} of top) {
    const fill = el("div", {class: "fill"});
    fill.style.width = `${(100 * probability).toFixed(1)}%`;
    box.append(el("div", {class: "bar", "data-label": label, "data-probability": String(probability)},
      el("span", {class: "name", text: label}), el("div", {class: "track"}, fill),
      el("span", {class: "pct", text: `${(100 * probability).toFixed(1)}%`})));
  }
  return box;
}

function predictionCard(record, shown, thumbnail) {
  const card = el("article", {class: "prediction", "data-label": record.label});
  if (thumbnail) card.append(el("img", {src: thumbnail, alt: shown}));
  card.append(el("div", {class: "body"}, el("div", {class: "input", text: shown, title: shown}),
    el("div", {class: "label", text: record.label}), bars(record.top_k)));
  return card;
}

function topK(id) {
  const value = parseInt($(id).value, 10);
  return Number.isFinite(value) && value > 0 ? value : 1;
}

async function classifyImages(files) {
  const images = Array.from(files);
  if (!images.length) return;
  const form = new FormData();
  for (const file of images) form.append("file", file, file.name);
  await run(`classifying ${images.length} image${images.length > 1 ? "s" : ""}…`, async () => {
    const answer = await call(`/predict?top_k=${topK("image-topk")}`, {method: "POST", body: form});
    return answer.predictions.map((record, i) => predictionCard(record, record.file, URL.createObjectURL(images[i])));
  });
}

async function classifyTexts() {
  const texts = $("text-input").value.split("\n").filter((line) => line.trim());
  await run(`classifying ${texts.length} text${texts.length === 1 ? "" : "s"}…`, async () => {
    const answer = await call(`/predict?top_k=${topK("text-topk")}`, {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({texts})});
    return answer.predictions.map((record) => predictionCard(record, record.text));
  });
}

function lineChart(steps, series) {
  // One polyline per series over the forecast steps, with the first and last times as axis labels.
  const width = 640, height = 220, pad = 36, ns = "http://www.w3.org/2000/svg";
  const values = steps.flatMap((step) => series.map((name) => step[name]));
  const low = Math.min(...values), high = Math.max(...values), span = high - low || 1;
  const x = (i) => pad + (steps.length > 1 ? i * (width - 2 * pad) / (steps.length - 1) : (width - 2 * pad) / 2);
  const y = (v) => height - pad - (v - low) * (height - 2 * pad) / span;
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "forecast");
  const add = (tag, attrs, text) => {
    const node = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    svg.append(node);
  };
  add("rect", {x: 0, y: 0, width, height, fill: "#fff"});
  add("line", {x1: pad, y1: height - pad, x2: width - pad, y2: height - pad, stroke: "#c8ced8"});
  add("text", {x: pad, y: height - 10, "font-size": 11, fill: "#5f6b7a"}, steps[0].time);
  add("text", {x: width - pad, y: height - 10, "font-size": 11, fill: "#5f6b7a", "text-anchor": "end"}, steps[steps.length - 1].time);
  add("text", {x: 4, y: pad - 8, "font-size": 11, fill: "#5f6b7a"}, high.toFixed(3));
  add("text", {x: 4, y: height - pad + 14, "font-size": 11, fill: "#5f6b7a"}, low.toFixed(3));
  const colours = ["#2f6fdf", "#e07a1f", "#2a9d5c", "#b03ca8", "#6b7280"];
  series.forEach((name, s) => {
    const points = steps.map((step, i) => `${x(i).toFixed(1)},${y(step[name]).toFixed(1)}`).join(" ");
    add("polyline", {points, fill: "none", stroke: colours[s % colours.length], "stroke-width": 2});
  });
  return svg;
}

async function forecast(file) {
  if (!file) return;
  const form = new FormData();
  form.append("file", file, file.name);
  await run(`forecasting from ${file.name}…`, async () => {
    const answer = await call("/predict", {method: "POST", body: form});
    const steps = answer.predictions, series = answer.series;
    const table = el("table", {class: "forecast-table"});
    table.append(el("thead", {}, el("tr", {}, el("th", {text: "time"}), ...series.map((s) => el("th", {text: s})))));
    const body = el("tbody");
    for (const step of steps) {
      body.append(el("tr", {}, el("td", {text: step.time}), ...series.map((s) => el("td", {text: step[s].toFixed(4)}))));
    }
    table.append(body);
    const box = el("div", {class: "forecast"}, el("h2", {text: `next ${steps.length} steps after ${answer.file}`}));
    if (steps.length) box.append(lineChart(steps, series));
    box.append(table);
    return [box];
  });
}

async function run(status, work) {
  // Shows `status`, runs `work` (which returns the result nodes) and shows them or the API's error.
  showError("");
  $("status").textContent = status;
  $("status").hidden = false;
  try {
    const nodes = await work();
    $("results").replaceChildren(...nodes);
    $("status").hidden = true;
  } catch (err) {
    $("status").hidden = true;
    showError(err.message);
  }
}

function dropTarget(zone, onFiles) {
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (event) => { event.preventDefault(); zone.classList.add("over"); });
  }
  for (const type of ["dragleave", "drop"]) zone.addEventListener(type, () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    if (event.dataTransfer && event.dataTransfer.files.length) onFiles(event.dataTransfer.files);
  });
}

function showPanel() {
  const modality = info.modality;  // image | text | timeseries: the input the task reads
  if (modality === "image") {
    $("image-panel").hidden = false;
    $("image-topk").max = info.classes.length;
    $("image-topk").value = Math.min(3, info.classes.length);
    $("image-input").addEventListener("change", (event) => classifyImages(event.target.files));
    dropTarget($("drop"), classifyImages);
  } else if (modality === "text") {
    $("text-panel").hidden = false;
    $("text-topk").max = info.classes.length;
    $("text-topk").value = Math.min(3, info.classes.length);
    $("text-button").addEventListener("click", classifyTexts);
  } else {
    $("forecast-panel").hidden = false;
    if (info.time_column || info.series) {
      $("csv-hint").textContent = `or click to choose it: the series (${info.series.join(", ")}) and their times, ` +
        `oldest first, at least the last ${info.lookback} rows`;
    }
    $("csv-input").addEventListener("change", (event) => forecast(event.target.files[0]));
    dropTarget($("csv-drop"), (files) => forecast(files[0]));
  }
  document.body.dataset.ready = "yes";  // for scripts driving the page: the form is wired
}

async function start() {
  try {
    await waitUntilReady();
    info = await call("/info");
  } catch (err) {
    $("status").textContent = "The model could not be loaded.";
    showError(err.message);
    return;
  }
  $("status").hidden = true;
  showSummary();
  showPanel();
}

start();
