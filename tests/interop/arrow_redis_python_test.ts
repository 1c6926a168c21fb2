// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
// Sharing a Redis with cachekit-py 0.3.0's `serializer="arrow"` and `serializer="auto"`, both ways:
// the Python side (tests/_python_arrow.ts: Debian's python3-msgpack, -lz4, -xxhash, -numpy, -redis,
// following 0.3.0's source) writes entries under 0.3.0's key (ending `:1s` / `:0s`), and
// `cache(fn, { serializer })` answers from them without calling fn; our entries are found by
// Python under the key it computes and checked as 0.3.0 reads them (document, metadata, the
// xxh3 prefix, the IPC file's magic; auto's envelope).
//
// Debian has no pyarrow, so no independent Arrow writer is at hand: the "pandas DataFrame" table is
// built with apache-arrow as pyarrow's `Table.from_pandas(df, preserve_index=True)` lays it out per
// the pandas metadata specification (a `__index_level_0__` column, the `pandas` schema metadata
// key), and the "polars" one with polars' types (`LargeUtf8`, `Int64`); Python frames and stores it.
// NumPy arrays are made by python3-numpy itself.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as arrow from "apache-arrow";
import { IN_CI, test } from "../_harness.ts";
import { PYTHON, pythonTestOptions, runPythonJson } from "../_python.ts";
import { PY_ARROW_READ, PY_ARROW_WRITE } from "../_python_arrow.ts";
import { SHARED_REDIS_URL, sharedRedisTestOptions } from "../_redis_server.ts";
import { cache, RedisBackend } from "../../mod.ts";
import { loadArrow, type NumpyArray } from "../../serializers/mod.ts";

await loadArrow(arrow);
const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;
const options = sharedRedisTestOptions.ignore ? sharedRedisTestOptions : pythonTestOptions;
const testOptions = { ...options, sanitize: false };
const numpyMissing = spawnSync(PYTHON, ["-c", "import numpy"]).status !== 0;
const numpyOptions = numpyMissing && !IN_CI
  ? { ignore: true, ignoreReason: "apt-get install python3-numpy", sanitize: false }
  : testOptions;

function run(label: string) {
  const id = `${label}_${crypto.randomUUID().slice(0, 8)}`;
  const backend = new RedisBackend({
    url: SHARED_REDIS_URL,
    invalidationChannel: `test:${id}:inv`,
  });
  return { ns: `cktest_${id}`, backend };
}

/** pyarrow's `Table.from_pandas(df, preserve_index=True)` of a 3-row frame, per the pandas spec. */
function pandasTable(): arrow.Table {
  const pandas = {
    index_columns: ["__index_level_0__"],
    column_indexes: [{
      name: null,
      field_name: null,
      pandas_type: "unicode",
      numpy_type: "object",
      metadata: { encoding: "UTF-8" },
    }],
    columns: [
      { name: "a", field_name: "a", pandas_type: "int64", numpy_type: "int64", metadata: null },
      { name: "b", field_name: "b", pandas_type: "float64", numpy_type: "float64", metadata: null },
      { name: "c", field_name: "c", pandas_type: "unicode", numpy_type: "object", metadata: null },
      {
        name: null,
        field_name: "__index_level_0__",
        pandas_type: "int64",
        numpy_type: "int64",
        metadata: null,
      },
    ],
    creator: { library: "pyarrow", version: "14.0.2" },
    pandas_version: "1.5.3",
  };
  const cols = {
    a: arrow.vectorFromArray([1n, 2n, 3n], new arrow.Int64()),
    b: arrow.vectorFromArray([4, 5, 6], new arrow.Float64()),
    c: arrow.vectorFromArray(["x", "y", null], new arrow.Utf8()),
    __index_level_0__: arrow.vectorFromArray([10n, 11n, 12n], new arrow.Int64()),
  };
  const t = new arrow.Table(cols);
  const schema = new arrow.Schema(t.schema.fields, new Map([["pandas", JSON.stringify(pandas)]]));
  return new arrow.Table(schema, t.batches);
}

/** What `pa.table(polars_df)` gives: polars' large strings and int64, no schema metadata. */
function polarsTable(): arrow.Table {
  return new arrow.Table({
    id: arrow.vectorFromArray([1n, 2n], new arrow.Int64()),
    name: arrow.vectorFromArray(["ada", "ünï"], new arrow.LargeUtf8()),
  });
}

const rows = (t: arrow.Table) =>
  JSON.stringify(t.toArray().map((r) => r.toJSON()), (_, v) => typeof v === "bigint" ? `${v}n` : v);

for (const integrity of [true, false]) {
  for (const [label, make] of [["pandas", pandasTable], ["polars", polarsTable]] as const) {
    test(
      `arrow + Python: a ${label} table cachekit-py wrote (integrity ${integrity}) reads as a Table`,
      async () => {
        const { ns, backend } = run("arw");
        try {
          const t = make();
          const { key } = runPythonJson<{ key: string }>(
            PY_ARROW_WRITE,
            JSON.stringify({
              url: SHARED_REDIS_URL,
              ns,
              func: "app.frames.get_frame",
              args: [42],
              integrity,
              ttl: 60,
              serializer: "arrow",
              kind: "arrow",
              ipc: btoa(String.fromCharCode(...arrow.tableToIPC(t, "file"))),
            }),
          );
          assert.ok(key.endsWith(integrity ? ":1s" : ":0s"), key);
          let calls = 0;
          const getFrame = cache(async (_id: number) => {
            calls++;
            return arrow.tableFromArrays({ other: Float64Array.of(1) });
          }, {
            name: "app.frames.get_frame",
            namespace: ns,
            ttl: 60,
            backend,
            serializer: "arrow",
            integrityChecking: integrity,
            wire: "document",
            ...bare,
          });
          const got = await getFrame(42);
          assert.equal(calls, 0, "answered from Python's entry");
          assert.ok(got instanceof arrow.Table);
          assert.equal(rows(got), rows(t));
          assert.deepEqual(got.schema.metadata, t.schema.metadata);
          assert.deepEqual(
            got.schema.fields.map((f) => String(f.type)),
            t.schema.fields.map((f) => String(f.type)),
          );
        } finally {
          await backend.deleteByPrefix(`t:default:ns:${ns}:`);
          await backend.close();
        }
      },
      testOptions,
    );
  }

  test(
    `arrow + Python: our Table (integrity ${integrity}) is 0.3.0's entry under 0.3.0's key`,
    async () => {
      const { ns, backend } = run("arr");
      try {
        const t = pandasTable();
        const getFrame = cache(async (_id: number) => t, {
          name: "app.frames.get_frame",
          namespace: ns,
          ttl: 60,
          backend,
          serializer: "arrow",
          integrityChecking: integrity,
          wire: "document",
          ...bare,
        });
        await getFrame(7);
        const out = runPythonJson<{
          found: boolean;
          document: { serializer: string; metadata: unknown; version: string };
          ipc: string;
          prefix_ok?: boolean;
        }>(
          PY_ARROW_READ,
          JSON.stringify({
            url: SHARED_REDIS_URL,
            ns,
            func: "app.frames.get_frame",
            args: [7],
            integrity,
          }),
        );
        assert.ok(out.found, "Python finds it under the key it computes");
        assert.equal(out.document.serializer, "arrow");
        assert.equal(out.document.version, "2.0");
        // 0.3.0's metadata exactly, plus our `ck_check` binding it to the digest (integrity on),
        // a field 0.3.0's `SerializationMetadata.from_dict` ignores.
        const { ck_check, ...python } = out.document.metadata as Record<string, unknown>;
        assert.deepEqual(python, {
          format: "arrow",
          encoding: "utf-8",
          compressed: false,
          original_type: "arrow",
        });
        if (integrity) assert.match(ck_check as string, /^[0-9a-f]{16}$/);
        else assert.equal(ck_check, undefined);
        if (integrity) assert.equal(out.prefix_ok, true);
        const ipc = Uint8Array.from(atob(out.ipc), (c) => c.charCodeAt(0));
        assert.deepEqual(ipc, arrow.tableToIPC(t, "file"));
        assert.equal(rows(arrow.tableFromIPC(ipc)), rows(t));
      } finally {
        await backend.deleteByPrefix(`t:default:ns:${ns}:`);
        await backend.close();
      }
    },
    testOptions,
  );
}

test(
  "arrow + Python: a corrupt entry, or one of another serializer, is a miss and replaced",
  async () => {
    const { ns, backend } = run("arc");
    try {
      const ipc = btoa(String.fromCharCode(...arrow.tableToIPC(pandasTable(), "file")));
      const base = {
        url: SHARED_REDIS_URL,
        ns,
        func: "app.frames.get_frame",
        integrity: true,
        ttl: 60,
      };
      runPythonJson(
        PY_ARROW_WRITE,
        JSON.stringify({
          ...base,
          args: [1],
          serializer: "arrow",
          kind: "arrow",
          ipc,
          corrupt: 30,
        }),
      );
      runPythonJson(
        PY_ARROW_WRITE,
        JSON.stringify({ ...base, args: [2], serializer: "auto", kind: "arrow", ipc }),
      );
      runPythonJson(
        PY_ARROW_WRITE,
        JSON.stringify({
          ...base,
          args: [3],
          serializer: "default",
          kind: "msgpack",
          value: [1, 2],
        }),
      );
      let calls = 0;
      const getFrame = cache(async (id: number) => {
        calls++;
        return arrow.tableFromArrays({ id: Int32Array.of(id) });
      }, {
        name: "app.frames.get_frame",
        namespace: ns,
        ttl: 60,
        backend,
        serializer: "arrow",
        wire: "document",
        ...bare,
      });
      for (const id of [1, 2, 3]) {
        const got = await getFrame(id);
        assert.deepEqual(
          [...got.getChild("id")!],
          [id],
          `entry ${id} is a miss, never a wrong value`,
        );
      }
      assert.equal(calls, 3);
      const out = runPythonJson<{ document: { serializer: string } }>(
        PY_ARROW_READ,
        JSON.stringify({ ...base, args: [1] }),
      );
      assert.equal(out.document.serializer, "arrow", "our entry replaced the corrupt one");
    } finally {
      await backend.deleteByPrefix(`t:default:ns:${ns}:`);
      await backend.close();
    }
  },
  testOptions,
);

for (const integrity of [true, false]) {
  test(`auto + Python: plain values both ways (integrity ${integrity})`, async () => {
    const { ns, backend } = run("aut");
    try {
      const uuid = "12345678-1234-5678-1234-567812345678";
      // What 0.3.0's `_auto_default` makes of a UUID and a set: its markers, in its key order.
      const value = {
        id: 42,
        name: "Ada",
        tags: { __set__: true, value: ["x", "y"], frozen: false },
        owner: { __uuid__: true, value: uuid },
        at: { __datetime__: true, value: "2025-11-14T10:30:00+00:00" },
        score: 1.5,
        none: null,
      };
      const expected = {
        ...value,
        tags: new Set(["x", "y"]),
        owner: uuid,
        at: new Date("2025-11-14T10:30:00Z"),
      };
      const base = { url: SHARED_REDIS_URL, ns, func: "app.auto.get", integrity, ttl: 60 };
      runPythonJson(
        PY_ARROW_WRITE,
        JSON.stringify({ ...base, args: [1], serializer: "auto", kind: "msgpack", value }),
      );
      let calls = 0;
      const get = cache(async (id: number) => {
        calls++;
        return { id, computed: true };
      }, {
        name: "app.auto.get",
        namespace: ns,
        ttl: 60,
        backend,
        serializer: "auto",
        integrityChecking: integrity,
        envelopeProtocol: "1.0", // the only one 0.3.0 reads
        wire: "document",
        ...bare,
      });
      assert.deepEqual(await get(1), expected);
      assert.equal(calls, 0, "answered from Python's entry");
      assert.deepEqual(await get(2), { id: 2, computed: true });
      const out = runPythonJson<
        { document: { serializer: string; metadata: unknown }; value: unknown }
      >(
        PY_ARROW_READ,
        JSON.stringify({ ...base, args: [2] }),
      );
      assert.equal(out.document.serializer, "auto");
      assert.deepEqual(out.document.metadata, {
        format: "msgpack",
        encoding: "utf-8",
        compressed: false,
        original_type: "msgpack",
      });
      assert.deepEqual(out.value, { id: 2, computed: true });
    } finally {
      await backend.deleteByPrefix(`t:default:ns:${ns}:`);
      await backend.close();
    }
  }, testOptions);
}

test(
  "auto + Python: a NumPy array reads as { data, shape, dtype }, a DataFrame as a Table",
  async () => {
    const { ns, backend } = run("anp");
    try {
      const base = {
        url: SHARED_REDIS_URL,
        ns,
        func: "app.auto.arr",
        integrity: true,
        ttl: 60,
        serializer: "auto",
      };
      const specs = [
        { dtype: "float64", shape: [2, 3], values: [0.5, 1, 2, 3, 4, -5] },
        { dtype: "int64", shape: [3], values: [-1, 0, -1099511627777] },
        { dtype: "uint8", shape: [2, 2], values: [0, 1, 254, 255] },
        { dtype: "bool", shape: [2], values: [true, false] },
      ];
      specs.forEach((numpy, i) =>
        runPythonJson(PY_ARROW_WRITE, JSON.stringify({ ...base, args: [i], kind: "numpy", numpy }))
      );
      const ipc = btoa(String.fromCharCode(...arrow.tableToIPC(pandasTable(), "file")));
      runPythonJson(PY_ARROW_WRITE, JSON.stringify({ ...base, args: [9], kind: "arrow", ipc }));
      let calls = 0;
      const get = cache(async (_i: number): Promise<unknown> => {
        calls++;
        return null;
      }, {
        name: "app.auto.arr",
        namespace: ns,
        ttl: 60,
        backend,
        serializer: "auto",
        wire: "document",
        ...bare,
      });
      const f64 = await get(0) as NumpyArray;
      assert.ok(f64.data instanceof Float64Array);
      assert.deepEqual([...f64.data], [0.5, 1, 2, 3, 4, -5]);
      assert.deepEqual(f64.shape, [2, 3]);
      assert.equal(f64.dtype, "float64");
      const i64 = await get(1) as NumpyArray;
      assert.deepEqual([...i64.data], [-1n, 0n, -1099511627777n]);
      const u8 = await get(2) as NumpyArray;
      assert.deepEqual([...u8.data], [0, 1, 254, 255]);
      assert.deepEqual(u8.shape, [2, 2]);
      const b = await get(3) as NumpyArray;
      assert.equal(b.dtype, "bool");
      assert.deepEqual([...b.data], [1, 0]);
      const t = await get(9);
      assert.ok(t instanceof arrow.Table);
      assert.equal(rows(t), rows(pandasTable()));
      assert.equal(calls, 0, "every entry answered from Python's");
    } finally {
      await backend.deleteByPrefix(`t:default:ns:${ns}:`);
      await backend.close();
    }
  },
  numpyOptions,
);
