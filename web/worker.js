// The client's work, off the page's thread: the WebAssembly client answers
// the page's requests one at a time, in order.
import init, { WebClient, pixelsFromPng } from './pkg/ppdnn_web.js';

let client = null;
const server = new URL(self.location.href).searchParams.get('server') || self.location.origin;
const ready = init().then(() => { client = new WebClient(server); });

async function handle(msg) {
  await ready;
  switch (msg.op) {
    case 'models': return JSON.parse(await client.models());
    case 'describe': return JSON.parse(await client.describe(msg.model, msg.mode, msg.bits));
    case 'keygen': {
      const t0 = performance.now();
      client.generateKey(msg.bits, (fraction, step) => self.postMessage({ progress: fraction, step }));
      return { bits: client.keyBits(), ms: performance.now() - t0, json: msg.remember ? client.keyJson() : null };
    }
    case 'loadkey': client.loadKey(msg.json); return { bits: client.keyBits() };
    case 'pixels': return Array.from(pixelsFromPng(new Uint8Array(msg.png), msg.shape[0], msg.shape[1], msg.shape[2]));
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
