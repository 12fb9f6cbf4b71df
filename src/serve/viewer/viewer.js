// scancer's slide viewer: everything it shows comes from the documented API (/slides, /analyses,
// /v2/repository/index), so a script with curl can do the same. No CDN: OpenSeadragon is served
// by scancer itself.
"use strict";

const state = {
  slides: [],
  slide: null,        // the selected slide's listing
  properties: null,   // its /properties
  analysis: null,     // the selected analysis
  overlay: null,      // the overlay's TiledImage
  outlines: null,     // the SVG overlay of region outlines
  polling: null,
  key: sessionStorage.getItem("scancer-key"),
};

const $ = (id) => document.getElementById(id);

function say(text, error) {
  $("message").textContent = text || "";
  $("message").className = error ? "error" : "";
}

// Requests carry the inference key where TorchServe's tokens are on (asked once, kept for the
// session); Basic credentials are the browser's own.
function headers() {
  return state.key ? { Authorization: "Bearer " + state.key } : {};
}

async function api(path, options = {}) {
  const sent = state.key;
  const response = await fetch(path, { ...options, headers: { ...headers(), ...(options.headers || {}) } });
  if (response.status === 400 || response.status === 401) {
    const body = await response.clone().json().catch(() => ({}));
    // TorchServe's refusal ({"type": "InvalidKeyException"}; under /v2, {"error": ...}).
    const refusedKey = body.type === "InvalidKeyException" || /^Token Authorization failed/.test(body.error || "");
    if (refusedKey) {
      // Another request asked for the key meanwhile: this one tries again with it.
      if (state.key && state.key !== sent) return api(path, options);
      const key = prompt("This server needs its inference key (key_file.json, \"inference\"):");
      if (key) {
        state.key = key.trim();
        sessionStorage.setItem("scancer-key", state.key);
        viewer.setAjaxHeaders(headers());
        return api(path, options);
      }
    }
  }
  return response;
}

async function json(path, options) {
  const response = await api(path, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(body.message || body.error || `${path}: ${response.status}`);
  }
  return body;
}

// An image the API serves, through fetch so that it carries the key.
async function imageInto(img, path) {
  const response = await api(path);
  if (response.ok) {
    img.src = URL.createObjectURL(await response.blob());
  }
}

const viewer = OpenSeadragon({
  element: $("viewer"),
  showNavigationControl: false,
  loadTilesWithAjax: true,
  ajaxHeaders: headers(),
  imageSmoothingEnabled: true,
  maxZoomPixelRatio: 4,
  visibilityRatio: 0.5,
  gestureSettingsMouse: { clickToZoom: false },
});
$("zoom-in").onclick = () => viewer.viewport.zoomBy(1.5);
$("zoom-out").onclick = () => viewer.viewport.zoomBy(1 / 1.5);
$("home").onclick = () => viewer.viewport.goHome();

// The scale bar: a round length near 120 screen pixels, from the slide's microns per pixel.
function drawScale() {
  const mpp = state.properties && state.properties.mpp;
  const item = viewer.world.getItemAt(0);
  if (!mpp || !item) {
    $("scalebar").hidden = true;
    return;
  }
  const zoom = item.viewportToImageZoom(viewer.viewport.getZoom(true)); // screen px per image px
  const micronsPerScreenPixel = mpp / zoom;
  let length = 120 * micronsPerScreenPixel;
  const power = Math.pow(10, Math.floor(Math.log10(length)));
  length = [1, 2, 5, 10].map((m) => m * power).filter((l) => l <= length).pop() || power;
  $("scalebar-line").style.width = `${length / micronsPerScreenPixel}px`;
  $("scalebar-text").textContent = length >= 1000 ? `${length / 1000} mm` : `${length} µm`;
  $("scalebar").hidden = false;
}
viewer.addHandler("animation", drawScale);
viewer.addHandler("open", drawScale);

function humanBytes(n) {
  return n > 1 << 30 ? `${(n / (1 << 30)).toFixed(1)} GiB` : n > 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${Math.ceil(n / 1024)} KiB`;
}

async function loadSlides() {
  try {
    state.slides = await json("/slides");
  } catch (e) {
    say(e.message, true);
    return;
  }
  const nav = $("slides");
  nav.replaceChildren();
  if (!state.slides.length) {
    nav.innerHTML = '<p class="empty">No slides in the folder yet: upload one.</p>';
  }
  for (const slide of state.slides) {
    const item = document.createElement("div");
    item.className = "slide";
    item.dataset.id = slide.id;
    const img = document.createElement("img");
    img.alt = "";
    const text = document.createElement("div");
    const name = document.createElement("div");
    name.className = "name";
    name.textContent = slide.name;
    const meta = document.createElement("div");
    if (slide.error) {
      meta.className = "bad";
      meta.textContent = slide.error;
    } else {
      meta.className = "meta";
      const done = slide.analyses.filter((a) => a.status === "done").length;
      meta.textContent = `${slide.width}×${slide.height}` + (slide.mpp ? ` · ${slide.mpp} µm/px` : "") +
        ` · ${humanBytes(slide.bytes)}` + (slide.analyses.length ? ` · ${done}/${slide.analyses.length} analysed` : "");
      imageInto(img, `/slides/${slide.id}/thumbnail.jpeg?size=128`);
    }
    text.append(name, meta);
    item.append(img, text);
    item.onclick = () => { if (!slide.error) openSlide(slide.id); };
    nav.append(item);
  }
  markSelected();
}

function markSelected() {
  for (const item of document.querySelectorAll("nav .slide")) {
    item.classList.toggle("selected", !!state.slide && item.dataset.id === state.slide.id);
  }
}

function setHash() {
  const parts = [];
  if (state.slide) parts.push(`slide=${state.slide.id}`);
  if (state.analysis) parts.push(`analysis=${state.analysis.id}`);
  history.replaceState(null, "", "#" + parts.join("&"));
}

async function openSlide(id, analysisId) {
  const slide = state.slides.find((s) => s.id === id);
  if (!slide) {
    say(`no slide ${id}`, true);
    return;
  }
  state.slide = slide;
  state.analysis = null;
  state.overlay = null;
  state.outlines = null;
  clearInterval(state.polling);
  markSelected();
  $("placeholder").hidden = true;
  try {
    state.properties = await json(`/slides/${id}/properties`);
  } catch (e) {
    say(e.message, true);
    return;
  }
  viewer.open(`/slides/${id}.dzi`);
  showProperties();
  $("about").hidden = $("analyse").hidden = false;
  $("result").hidden = true;
  await loadAnalyses(analysisId);
  setHash();
}

function showProperties() {
  const p = state.properties;
  const rows = [
    ["Size", `${p.width} × ${p.height} px`],
    ["Resolution", p.mpp ? `${p.mpp} µm/px` : "not declared"],
    ["Objective", p.objective ? `${p.objective}×` : "—"],
    ["Vendor", p.vendor],
    ["Levels", p.levels.map((l) => `${l.width}×${l.height}`).join(", ")],
  ];
  $("slide-name").textContent = p.name;
  fill($("properties"), rows);
}

function fill(dl, rows) {
  dl.replaceChildren();
  for (const [k, v] of rows) {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = v;
    dl.append(dt, dd);
  }
}

async function loadModels() {
  try {
    const models = await json("/v2/repository/index", { method: "POST", body: "{}" });
    const select = $("model");
    select.replaceChildren();
    for (const m of models) {
      const option = document.createElement("option");
      option.value = m.name;
      option.dataset.version = m.version;
      option.textContent = m.version ? `${m.name} (${m.version})` : m.name;
      select.append(option);
    }
  } catch (e) {
    say(`cannot list the models: ${e.message}`, true);
  }
}

// The slide's analyses; `select` (else the newest) is shown unless `choose` is false.
async function loadAnalyses(select, choose = true) {
  const analyses = await json(`/slides/${state.slide.id}/analyses`).catch((e) => { say(e.message, true); return []; });
  const list = $("analysis-list");
  list.replaceChildren();
  for (const a of analyses) {
    const li = document.createElement("li");
    li.dataset.id = a.id;
    li.textContent = `${a.model} · ${a.status} · ${a.created.slice(0, 16).replace("T", " ")}`;
    if (a.status === "queued" || a.status === "running") {
      const cancel = document.createElement("button");
      cancel.textContent = "cancel";
      cancel.onclick = async (event) => {
        event.stopPropagation();
        await json(`/analyses/${a.id}`, { method: "DELETE" }).catch((e) => say(e.message, true));
        loadAnalyses(state.analysis && state.analysis.id);
      };
      li.append(cancel);
    }
    li.onclick = () => showAnalysis(a.id);
    li.classList.toggle("selected", !!state.analysis && state.analysis.id === a.id);
    list.append(li);
  }
  $("analyses").hidden = !analyses.length;
  if (!choose) return;
  const chosen = select || (analyses.length ? analyses[analyses.length - 1].id : null);
  if (chosen) await showAnalysis(chosen);
}

$("analysis-form").onsubmit = async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const chosen = $("model").selectedOptions[0];
  const request = { model: form.get("model") };
  if (chosen && chosen.dataset.version) request.version = chosen.dataset.version;
  for (const key of ["mpp", "threshold", "tissue_threshold", "smooth"]) {
    if (form.get(key) !== "") request[key] = Number(form.get(key));
  }
  if (form.get("class")) request.class = form.get("class");
  try {
    const analysis = await json(`/slides/${state.slide.id}/analyses`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(request),
    });
    say(`analysis ${analysis.id} queued`);
    await loadAnalyses(analysis.id);
  } catch (e) {
    say(e.message, true);
  }
};

async function showAnalysis(id) {
  clearInterval(state.polling);
  let analysis;
  try {
    analysis = await json(`/analyses/${id}`);
  } catch (e) {
    say(e.message, true);
    return;
  }
  state.analysis = analysis;
  setHash();
  for (const li of document.querySelectorAll("#analysis-list li")) {
    li.classList.toggle("selected", li.dataset.id === id);
  }
  $("result").hidden = false;
  $("analysis-status").textContent = analysis.status;
  const progress = analysis.progress;
  $("progress").hidden = !(analysis.status === "running" || analysis.status === "queued");
  if (progress) {
    $("progress").value = progress.windows ? progress.windows_done / progress.windows : 0;
    $("progress").title = `${progress.windows_done} of ${progress.windows} windows`;
  }
  if (analysis.status === "queued" || analysis.status === "running" || analysis.status === "cancelling") {
    $("verdict").textContent = progress ? `${progress.windows_done} of ${progress.windows} windows` : "waiting for the model";
    state.polling = setTimeout(() => showAnalysis(id), 500);
    return;
  }
  removeOverlay();
  const record = analysis.record;
  if (analysis.status !== "done") {
    $("verdict").textContent = analysis.error || analysis.status;
    fillResult(null);
    loadAnalyses(null, false);
    return;
  }
  const slide = record.slide;
  $("verdict").textContent = `${record.label} (${Number(record.score).toFixed(3)}) · ${slide.positive_tiles} of ${slide.tissue_tiles} tissue windows positive · ${slide.regions} region(s)`;
  addOverlay();
  fillResult(analysis);
  loadAnalyses(null, false);
}

function removeOverlay() {
  if (state.overlay) viewer.world.removeItem(state.overlay);
  state.overlay = null;
  if (state.outlines) viewer.removeOverlay(state.outlines);
  state.outlines = null;
}

function overlayUrl() {
  return `/analyses/${state.analysis.id}/overlay.dzi?threshold=${$("threshold").value}`;
}

function addOverlay() {
  const analysis = state.analysis;
  viewer.addTiledImage({
    tileSource: overlayUrl(),
    x: 0,
    y: 0,
    width: 1,
    opacity: Number($("opacity").value),
    success: (event) => {
      if (state.analysis !== analysis) {
        viewer.world.removeItem(event.item);
        return;
      }
      if (state.overlay) viewer.world.removeItem(state.overlay);
      state.overlay = event.item;
      state.overlay.imageSmoothingEnabled = false;
    },
  });
}

$("opacity").oninput = () => state.overlay && state.overlay.setOpacity(Number($("opacity").value));
$("threshold").onchange = () => {
  $("threshold-value").textContent = $("threshold").value;
  if (state.analysis && state.analysis.status === "done") addOverlay();
};
$("threshold").oninput = () => { $("threshold-value").textContent = $("threshold").value; };

async function fillResult(analysis) {
  const tbody = document.querySelector("#regions tbody");
  tbody.replaceChildren();
  $("downloads").replaceChildren();
  fill($("provenance"), []);
  if (!analysis) return;
  for (const [name, path] of Object.entries(analysis.results)) {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = path;
    a.textContent = name;
    a.download = `${state.slide.name.replace(/[\\/]/g, "_")}.${name}`;
    // With tokens on, a plain link would carry no key: the file comes through fetch.
    a.onclick = async (event) => {
      if (!state.key) return;
      event.preventDefault();
      const response = await api(path);
      const link = document.createElement("a");
      link.href = URL.createObjectURL(await response.blob());
      link.download = a.download;
      link.click();
    };
    li.append(a);
    $("downloads").append(li);
  }
  fill($("provenance"), Object.entries(analysis.record.slide.provenance).map(([k, v]) => [k, Array.isArray(v) ? v.join(" × ") : String(v)]));
  const regions = await json(analysis.results.regions).catch((e) => { say(e.message, true); return []; });
  drawOutlines(regions);
  regions.forEach((region, k) => {
    const m = region.measurements;
    const tr = document.createElement("tr");
    tr.dataset.region = k;
    const cells = [k + 1, m.area_mm2 != null ? m.area_mm2.toFixed(4) : "—", m.diameter_mm != null ? m.diameter_mm.toFixed(3) : "—",
      m.peak_probability != null ? m.peak_probability.toFixed(3) : "—"];
    for (const c of cells) {
      const td = document.createElement("td");
      td.textContent = c;
      tr.append(td);
    }
    tr.title = region.name;
    tr.onclick = () => zoomTo(region.bounds);
    tbody.append(tr);
  });
}

// The regions' outlines as one SVG over the slide, in level-0 pixels.
function drawOutlines(regions) {
  const p = state.properties;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${p.width} ${p.height}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.style.pointerEvents = "none";
  const stroke = Math.max(p.width, p.height) / 400;
  for (const region of regions) {
    const polygons = region.geometry.type === "MultiPolygon" ? region.geometry.coordinates : [region.geometry.coordinates];
    for (const polygon of polygons) {
      for (const ring of polygon) {
        const path = document.createElementNS("http://www.w3.org/2000/svg", "polygon");
        path.setAttribute("points", ring.map(([x, y]) => `${x},${y}`).join(" "));
        path.setAttribute("fill", "none");
        path.setAttribute("stroke", "#00e5ff");
        path.setAttribute("stroke-width", stroke);
        path.setAttribute("vector-effect", "non-scaling-stroke");
        path.style.strokeWidth = "2px";
        svg.append(path);
      }
    }
  }
  if (state.outlines) viewer.removeOverlay(state.outlines);
  state.outlines = svg;
  const slide = viewer.world.getItemAt(0);
  viewer.addOverlay({ element: svg, location: slide.imageToViewportRectangle(0, 0, p.width, p.height) });
}

function zoomTo([x, y, w, h]) {
  const margin = Math.max(w, h) * 0.25;
  const rect = viewer.world.getItemAt(0).imageToViewportRectangle(x - margin, y - margin, w + 2 * margin, h + 2 * margin);
  viewer.viewport.fitBounds(rect);
}

$("upload").onchange = async (event) => {
  const file = event.target.files[0];
  if (!file) return;
  say(`uploading ${file.name}…`);
  try {
    const slide = await json(`/slides/${encodeURIComponent(file.name)}`, { method: "PUT", body: file });
    say(`${slide.name} uploaded`);
    await loadSlides();
    openSlide(slide.id);
  } catch (e) {
    say(e.message, true);
  }
  event.target.value = "";
};

window.scancer = { viewer, state, openSlide, showAnalysis, zoomTo };

(async function start() {
  await Promise.all([loadSlides(), loadModels()]);
  const hash = new URLSearchParams(location.hash.slice(1));
  if (hash.get("slide")) await openSlide(hash.get("slide"), hash.get("analysis"));
})();
