// The client's work, off the page's thread: the WebAssembly client answers
// the page's requests one at a time, in order. On a cross-origin isolated
// page (as `ppdnn serve --web` serves it) the threaded build spreads the
// work over a pool of Web Workers sharing its memory (rayon, as the native
// client uses its cores); elsewhere the single-threaded build runs here.

let pkg = null;
let client = null;
let threads = 1;
let threadError = null;
const server = new URL(self.location.href).searchParams.get('server') || self.location.origin;

async function load() {
  if (self.crossOriginIsolated) {
    try {
      pkg = await import('./pkg-threads/ppdnn_web.js');
      await pkg.default();
      threads = Math.max(1, navigator.hardwareConcurrency || 1);
      await pkg.initThreadPool(threads);
    } catch (err) {
      // Built without the threaded client (no nightly toolchain): one worker.
      threadError = String(err && err.message ? err.message : err);
      console.warn('the threaded client is not available:', err);
      pkg = null;
      threads = 1;
    }
  }
  if (!pkg) {
    pkg = await import('./pkg/ppdnn_web.js');
    await pkg.default();
  }
  client = new pkg.WebClient(server);
}
const ready = load();

async function handle(msg) {
  await ready;
  switch (msg.op) {
    case 'runtime': return { threads, isolated: self.crossOriginIsolated === true, threadError };
    case 'models': return JSON.parse(await client.models());
    case 'describe': return JSON.parse(await client.describe(msg.model, msg.mode, msg.bits));
    case 'keygen': {
      const t0 = performance.now();
      client.generateKey(msg.bits, (fraction, step) => self.postMessage({ progress: fraction, step }));
      return { bits: client.keyBits(), ms: performance.now() - t0, json: msg.remember ? client.keyJson() : null };
    }
    case 'loadkey': client.loadKey(msg.json); return { bits: client.keyBits() };
    case 'pixels': return Array.from(pkg.pixelsFromPng(new Uint8Array(msg.png), msg.shape[0], msg.shape[1], msg.shape[2]));
    case 'prepare': return await client.prepare(msg.model, msg.mode);
    case 'classify': return JSON.parse(await client.classify(msg.model, msg.mode, new Uint8Array(msg.pixels)));
    default: throw new Error('unknown request ' + msg.op);
  }
}

let queue = Promise.resolve();
self.onmessage = (e) => {
  const { id, ...msg } = e.data;
  queue = queue.then(async () => {
    try {
      self.postMessage({ id, ok: await handle(msg) });
    } catch (err) {
      self.postMessage({ id, error: String(err && err.message ? err.message : err) });
    }
  });
};
