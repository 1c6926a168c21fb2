// `monitoring.structuredLogging` decides the shape of a cached function's log records: with it on
// (the default) they carry the function's context as properties a sink can index; with it off each
// record is one line of plain text without properties (issue 13: no validated option is a no-op).
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { captureLogs, render } from "../_log_capture.ts";
import { type Backend, BackendError, cache, MemoryBackend } from "../../mod.ts";

/** A memory backend whose reads fail, so every call logs one L2 failure. */
function failingReads(): Backend {
  const inner = new MemoryBackend();
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === "get") {
        return () =>
          Promise.reject(
            new BackendError("boom {not a placeholder}", {
              kind: "permanent",
              backend: "memory",
              operation: "get",
            }),
          );
      }
      const v = Reflect.get(target, prop, receiver);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

for (const structured of [true, false]) {
  test(`structuredLogging ${structured}: L2 failure records ${structured ? "carry properties" : "are plain text"}`, async () => {
    const logs = await captureLogs("warning");
    try {
      const name = `logging.structured.${structured}`;
      const f = cache(async (n: number) => await Promise.resolve(n + 1), {
        name,
        namespace: "logs",
        backend: failingReads(),
        l1: false,
        circuitBreaker: false,
        timeout: false,
        backpressure: false,
        monitoring: { structuredLogging: structured },
      });
      assert.equal(await f(1), 2);
      const [r] = logs.matching(/L2 get failed/);
      assert.ok(r, "the failure was logged");
      assert.match(render(r), new RegExp(`${name}: L2 get failed.*boom \\{not a placeholder\\}`));
      if (structured) {
        assert.equal(r.properties.identity, name);
        assert.equal(r.properties.namespace, "logs");
        assert.equal(r.properties.operation, "get");
        assert.equal(r.properties.kind, "permanent");
      } else {
        assert.deepEqual(r.properties, {});
      }
    } finally {
      await logs.stop();
    }
  });
}
