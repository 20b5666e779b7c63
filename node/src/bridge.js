// Synchronous calls from the component's worker to the main thread.
//
// A component's imports are synchronous, but Node's fetch is not: the component runs in a worker
// that blocks on a shared flag while the main thread, whose event loop stays free, does the
// asynchronous work and answers. The answer travels as a message on a port of its own and is taken
// with `receiveMessageOnPort`, so the worker needs no event loop turn to see it. Written here
// because the one library for this (synckit) spawns its own worker per function and cannot share
// one with the component's; the protocol is the few lines below.

import { receiveMessageOnPort } from 'node:worker_threads';

/** Slots of the shared Int32Array. */
export const SLOT = {
  /** 1 once the main thread has posted the answer to the pending call. */
  answered: 0,
  /** 1 while the user asks the running operation to stop. */
  cancelled: 1,
};

export const sharedFlags = () => new Int32Array(new SharedArrayBuffer(4 * 2));

/** The worker's side: `call(op, ...args)` blocks until the main thread answers. */
export function caller(port, flags) {
  return function call(op, ...args) {
    Atomics.store(flags, SLOT.answered, 0);
    port.postMessage({ op, args });
    for (;;) {
      Atomics.wait(flags, SLOT.answered, 0);
      const received = receiveMessageOnPort(port);
      if (received) {
        Atomics.store(flags, SLOT.answered, 0);
        const { value, thrown } = received.message;
        if (thrown) throw Object.assign(new Error(thrown.message), thrown);
        return value;
      }
    }
  };
}

/** Array buffers inside `value` that can be moved rather than copied to the other thread. */
function transferables(value, found = new Set()) {
  if (value instanceof Uint8Array) {
    if (value.buffer instanceof ArrayBuffer && value.byteOffset === 0 && value.byteLength === value.buffer.byteLength) found.add(value.buffer);
  } else if (Array.isArray(value)) {
    for (const v of value) transferables(v, found);
  } else if (value && typeof value === 'object') {
    for (const v of Object.values(value)) transferables(v, found);
  }
  return found;
}

/** The main thread's side: answers each call with `handlers[op](...args)`, awaited. */
export function serve(port, flags, handlers) {
  port.on('message', async ({ op, args }) => {
    let answer;
    try {
      const handler = handlers[op];
      if (!handler) throw new Error(`no bridge operation ${op}`);
      answer = { value: await handler(...args) };
    } catch (e) {
      answer = { thrown: { message: String(e?.message ?? e), kind: e?.kind } };
    }
    port.postMessage(answer, [...transferables(answer.value)]);
    Atomics.store(flags, SLOT.answered, 1);
    Atomics.notify(flags, SLOT.answered);
  });
}
