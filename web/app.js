// The page: drawing, the choices, and what the answer shows. All the
// cryptography runs in worker.js (WebAssembly), never on this thread.
const $ = (id) => document.getElementById(id);
// The server: this page's origin, or ?server=URL (a page on another origin
// needs the server's --cors-origin for it).
const server = new URLSearchParams(location.search).get('server') || location.origin;
const worker = new Worker(`worker.js?server=${encodeURIComponent(server)}`, { type: 'module' });
const pending = new Map();
let nextId = 0;
let models = [];
let shape = [1, 28, 28];
let pngPixels = null; // set by a loaded PNG; cleared by drawing

worker.onmessage = (e) => {
  const m = e.data;
  if (m.progress !== undefined) {
    $('keyprogress').hidden = false;
    $('keyprogress').value = m.progress;
    $('keystatus').textContent = `Making a key: ${m.step}...`;
    return;
  }
  const p = pending.get(m.id);
  pending.delete(m.id);
  if (m.error !== undefined) p.reject(new Error(m.error)); else p.resolve(m.ok);
};
worker.onerror = (e) => showError(`the client failed to load: ${e.message || 'see the console'}`);

function ask(msg) {
  const id = nextId++;
  return new Promise((resolve, reject) => { pending.set(id, { resolve, reject }); worker.postMessage({ id, ...msg }); });
}

function showError(text) { $('error').textContent = text; $('error').hidden = false; }
function clearError() { $('error').hidden = true; }
function status(text) { $('status').textContent = text; }

// Drawing: white strokes on black, as MNIST's digits are.
const pad = $('pad');
const ctx = pad.getContext('2d');
function clearPad() { ctx.fillStyle = 'black'; ctx.fillRect(0, 0, pad.width, pad.height); pngPixels = null; }
clearPad();
let drawing = false;
pad.addEventListener('pointerdown', (e) => { drawing = true; pngPixels = null; stroke(e, true); });
pad.addEventListener('pointermove', (e) => { if (drawing) stroke(e, false); });
window.addEventListener('pointerup', () => { drawing = false; });
function stroke(e, first) {
  const r = pad.getBoundingClientRect();
  const x = (e.clientX - r.left) * pad.width / r.width, y = (e.clientY - r.top) * pad.height / r.height;
  ctx.strokeStyle = 'white'; ctx.lineWidth = 22; ctx.lineCap = 'round'; ctx.lineJoin = 'round';
  if (first) { ctx.beginPath(); ctx.moveTo(x, y); }
  ctx.lineTo(x, y); ctx.stroke();
}
$('clear').onclick = clearPad;

// A PNG dropped on the pad, or picked with the file input.
pad.addEventListener('dragover', (e) => e.preventDefault());
pad.addEventListener('drop', (e) => { e.preventDefault(); if (e.dataTransfer.files[0]) loadPng(e.dataTransfer.files[0]); });
$('file').onchange = () => { if ($('file').files[0]) loadPng($('file').files[0]); };
async function loadPng(file) {
  clearError();
  try {
    const png = await file.arrayBuffer();
    pngPixels = await ask({ op: 'pixels', png, shape });
    showPixels(pngPixels);
    document.body.dataset.input = file.name;
  } catch (err) { showError(`that image: ${err.message}`); }
}

// Shows model-sized pixels on the pad, scaled up.
function showPixels(pixels) {
  const [c, h, w] = shape;
  const small = new ImageData(w, h);
  for (let i = 0; i < h * w; i++) {
    const [r, g, b] = c === 3 ? [pixels[i], pixels[h * w + i], pixels[2 * h * w + i]] : [pixels[i], pixels[i], pixels[i]];
    small.data.set([r, g, b, 255], 4 * i);
  }
  const tmp = new OffscreenCanvas(w, h);
  tmp.getContext('2d').putImageData(small, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(tmp, 0, 0, pad.width, pad.height);
}

// The pad as the model's input: through the same code `ppdnn predict` uses.
async function padPixels() {
  if (pngPixels) return pngPixels;
  const blob = await new Promise((res) => pad.toBlob(res, 'image/png'));
  return ask({ op: 'pixels', png: await blob.arrayBuffer(), shape });
}

function fillModes() {
  const m = models.find((x) => x.name === $('model').value);
  $('mode').replaceChildren(...m.modes.map((mode) => new Option(mode, mode)));
}
$('model').onchange = async () => { fillModes(); await describe(); prepare(); };
$('mode').onchange = async () => { await describe(); prepare(); };

// The offline part of the next inference (its encryptions' randomness, the
// private mode's key proofs), done while the user draws.
async function prepare() {
  if (!document.body.dataset.key) return;
  const model = $('model').value, mode = $('mode').value;
  delete document.body.dataset.prepared;
  try {
    const ms = await ask({ op: 'prepare', model, mode });
    if ($('model').value === model && $('mode').value === mode) {
      document.body.dataset.prepared = mode;
      document.body.dataset.prepareMs = String(Math.round(ms));
    }
  } catch (err) { showError(`preparing: ${err.message}`); }
}

async function describe() {
  try {
    const d = await ask({ op: 'describe', model: $('model').value, mode: $('mode').value, bits: 2048 });
    shape = d.input_shape;
    status(`${d.name}: ${d.dataset}, input ${shape.join('x')}, ${d.rounds} layers.`);
  } catch (err) { showError(`describing the model: ${err.message}`); }
}

function keyReady(bits, text) {
  $('keyprogress').hidden = true;
  $('keystatus').textContent = text;
  $('classify').disabled = false;
  document.body.dataset.key = String(bits);
}

$('keygen').onclick = async () => {
  clearError();
  $('keygen').disabled = true; $('classify').disabled = true;
  try {
    const r = await ask({ op: 'keygen', bits: 2048, remember: $('remember').checked });
    // Only this page's own server's key is kept (or dropped) here: a link
    // with ?server= must not replace or wipe it.
    if (server === location.origin) {
      if (r.json) localStorage.setItem('ppdnn-key', r.json); else localStorage.removeItem('ppdnn-key');
    }
    document.body.dataset.keygenMs = String(Math.round(r.ms));
    keyReady(r.bits, `Key ready (${r.bits} bits, made in ${(r.ms / 1000).toFixed(1)} s${r.json ? ', kept in this browser' : ''}).`);
    prepare();
  } catch (err) { showError(`making the key: ${err.message}`); }
  $('keygen').disabled = false;
};

$('classify').onclick = async () => {
  clearError();
  $('classify').disabled = true;
  status('Encrypting and classifying...');
  try {
    const pixels = await padPixels();
    const r = await ask({ op: 'classify', model: $('model').value, mode: $('mode').value, pixels });
    show(r);
    status(`Done: ${r.mode} mode, ${r.calls} calls.`);
    document.body.dataset.done = String(Number(document.body.dataset.done || 0) + 1);
    prepare();
  } catch (err) {
    status('Failed.');
    showError(err.message);
  }
  $('classify').disabled = false;
};

function show(r) {
  $('answer').hidden = false;
  $('label').textContent = r.label;
  $('class').textContent = r.class === String(r.label) ? '' : `(${r.class})`;
  $('logits').textContent = JSON.stringify({ label: r.label, logits: r.logits, mode: r.mode, total_ms: r.total_ms,
    client_ms: r.client_ms, server_and_network_ms: r.server_and_network_ms, bytes_sent: r.bytes_sent,
    bytes_received: r.bytes_received });
  const top = Math.max(...r.scores);
  $('bars').replaceChildren(...r.scores.map((s, i) => {
    const row = document.createElement('div');
    row.className = 'bar' + (i === r.label ? ' top' : '');
    row.innerHTML = `<span class="name"></span><span class="fill" style="width:${Math.max(1, 240 * s / top)}px"></span><span>${(100 * s).toFixed(1)}%</span>`;
    row.firstChild.textContent = r.classes[i] ?? i;
    return row;
  }));
  const kb = (n) => n > 1e6 ? `${(n / 1e6).toFixed(2)} MB` : `${(n / 1e3).toFixed(1)} kB`;
  $('t-total').textContent = `${(r.total_ms / 1000).toFixed(2)} s`;
  $('t-client').textContent = `${(r.client_ms / 1000).toFixed(2)} s`;
  $('t-server').textContent = `${(r.server_and_network_ms / 1000).toFixed(2)} s`;
  $('bytes').textContent = `${kb(r.bytes_sent)} / ${kb(r.bytes_received)}`;
  $('saw').textContent = r.server_saw_hex + '...';
}

async function start() {
  const t0 = performance.now();
  try {
    $('server').textContent = server === location.origin ? `Server: ${server} (this page's)` : `Server: ${server} (another origin: not this page's server)`;
    const rt = await ask({ op: 'runtime' });
    document.body.dataset.threads = String(rt.threads);
    if (rt.threadError) document.body.dataset.threadError = rt.threadError;
    $('runtime').textContent = rt.threads > 1
      ? `Client: WebAssembly on ${rt.threads} Web Workers (threaded), plus one coordinating.`
      : `Client: WebAssembly on one Web Worker${rt.isolated ? (rt.threadError ? ` (the threaded build failed: ${rt.threadError})` : '')
        : ' (this page is not cross-origin isolated, so its workers cannot share memory)'}.`;
    models = await ask({ op: 'models' });
    $('model').replaceChildren(...models.map((m) => new Option(`${m.name} (${m.dataset})`, m.name)));
    fillModes();
    await describe();
    // A key kept in this browser is used with this page's own server only:
    // a link with ?server= must not make it identify the user elsewhere.
    const saved = server === location.origin ? localStorage.getItem('ppdnn-key') : null;
    if (saved) {
      const r = await ask({ op: 'loadkey', json: saved });
      $('remember').checked = true;
      keyReady(r.bits, `Key loaded from this browser (${r.bits} bits).`);
      prepare();
    }
    document.body.dataset.readyMs = String(Math.round(performance.now() - t0));
    document.body.dataset.ready = '1';
  } catch (err) {
    status('Not connected.');
    showError(`cannot reach the server at ${server}: ${err.message}`);
  }
}
start();
