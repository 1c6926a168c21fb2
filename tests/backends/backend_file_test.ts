import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { BackendError, CacheConfigError } from "../../errors.ts";
import {
  defaultCacheDirectory,
  FileBackend,
  type FileBackendOptions,
  type PruneReport,
} from "../../backends/mod.ts";
import { backendConformance } from "../_backend_conformance.ts";
import { test } from "../_harness.ts";
import { captureLogs } from "../_log_capture.ts";
import { sleep, until } from "../_timing.ts";

// Expectations below follow the documented format (magic "CK", version 1, reserved, u16 BE flags,
// u64 BE expiry; flag 0x0001 = key embedded as u32 BE length + UTF-8, 0x0002 = expiry in ms,
// 0x0004 = u64 BE value length after the key) and the documented file name (hex SHA-256 of the
// key, computed here with node:crypto).

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "ck-file-"));
}

/** A FileBackend that removes its temp directory when closed. */
class TempFileBackend extends FileBackend {
  readonly root: string;
  constructor(options: FileBackendOptions = {}) {
    const root = tempDir();
    super({ directory: path.join(root, "cache"), ...options });
    this.root = root;
  }
  override async close(): Promise<void> {
    await super.close();
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

backendConformance("file", () => Promise.resolve(new TempFileBackend()), {
  capabilities: ["ttl", "lock", "timeouts", "prefix", "tags"],
});

const enc = new TextEncoder();
const fileName = (key: string) => createHash("sha256").update(key, "utf8").digest("hex");

function entryBytes(
  key: string | null,
  value: Uint8Array,
  o: { expiry?: bigint; flags?: number; version?: number; magic?: [number, number] } = {},
): Uint8Array {
  const kb = key === null ? new Uint8Array(0) : enc.encode(key);
  const flags = o.flags ?? (key === null ? 0x0002 : 0x0003);
  const hasKey = (flags & 1) !== 0;
  const hasLength = (flags & 4) !== 0;
  const out = new Uint8Array(
    14 + (hasKey ? 4 + kb.length : 0) + (hasLength ? 8 : 0) + value.length,
  );
  const v = new DataView(out.buffer);
  out[0] = o.magic?.[0] ?? 0x43;
  out[1] = o.magic?.[1] ?? 0x4b;
  out[2] = o.version ?? 1;
  out[3] = 0;
  v.setUint16(4, flags);
  v.setBigUint64(6, o.expiry ?? 0n);
  let off = 14;
  if (hasKey) {
    v.setUint32(14, kb.length);
    out.set(kb, 18);
    off = 18 + kb.length;
  }
  if (hasLength) {
    v.setBigUint64(off, BigInt(value.length));
    off += 8;
  }
  out.set(value, off);
  return out;
}

async function withBackend(
  options: FileBackendOptions,
  fn: (b: TempFileBackend, dir: string) => Promise<void>,
): Promise<void> {
  const b = new TempFileBackend(options);
  try {
    await b.healthCheck(); // creates the directory
    await fn(b, b.directory);
  } finally {
    await b.close();
  }
}

async function pruneNow(b: FileBackend): Promise<PruneReport> {
  for (let i = 0; i < 200; i++) {
    const r = await b.prune();
    if (!r.skipped) return r;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error("prune stayed skipped");
}

test("file: entry on disk follows the documented format, name and modes", async () => {
  await withBackend({}, async (b, dir) => {
    const value = enc.encode("value-bytes");
    const before = Date.now();
    await b.set("user:42", value, 100);
    const p = path.join(dir, fileName("user:42"));
    const raw = new Uint8Array(fs.readFileSync(p));
    const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    assert.deepEqual([...raw.subarray(0, 4)], [0x43, 0x4b, 1, 0]);
    assert.equal(v.getUint16(4), 0x0007);
    const expiry = Number(v.getBigUint64(6));
    assert.ok(expiry >= before + 100_000 && expiry <= Date.now() + 100_000 + 1, `expiry ${expiry}`);
    assert.equal(v.getUint32(14), 7);
    assert.equal(new TextDecoder().decode(raw.subarray(18, 25)), "user:42");
    assert.equal(v.getBigUint64(25), BigInt(value.length));
    assert.deepEqual(raw.subarray(33), value);
    assert.equal(fs.statSync(p).mode & 0o777, 0o600);
    assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
    assert.equal(fs.statSync(path.join(dir, ".locks")).mode & 0o777, 0o700);
    await b.set("forever", value);
    const raw2 = fs.readFileSync(path.join(dir, fileName("forever")));
    assert.equal(raw2.readBigUInt64BE(6), 0n, "no TTL = expiry 0");
  });
});

test("file: custom fileMode is applied exactly", async () => {
  await withBackend({ fileMode: 0o640 }, async (b, dir) => {
    await b.set("k", enc.encode("v"));
    assert.equal(fs.statSync(path.join(dir, fileName("k"))).mode & 0o777, 0o640);
  });
});

test("file: hand-written entries per the spec are read (ms and seconds expiry)", async () => {
  await withBackend({}, async (b, dir) => {
    const nowS = BigInt(Math.floor(Date.now() / 1000));
    fs.writeFileSync(
      path.join(dir, fileName("sec")),
      entryBytes("sec", enc.encode("S"), { flags: 0x0001, expiry: nowS + 100n }),
    );
    fs.writeFileSync(
      path.join(dir, fileName("ms")),
      entryBytes("ms", enc.encode("M"), { expiry: BigInt(Date.now() + 50_000) }),
    );
    assert.deepEqual(await b.get("sec"), enc.encode("S"));
    const ttl = (await b.capabilities.ttl.ttl("sec"))!;
    assert.ok(ttl > 98 && ttl <= 101, `seconds expiry read as ${ttl}`);
    assert.deepEqual(await b.get("ms"), enc.encode("M"));
    const ttl2 = (await b.capabilities.ttl.ttl("ms"))!;
    assert.ok(ttl2 > 48 && ttl2 <= 50, `ms expiry read as ${ttl2}`);
    // Expired (seconds): a miss, and the file is removed.
    fs.writeFileSync(
      path.join(dir, fileName("old")),
      entryBytes("old", enc.encode("O"), { flags: 0x0001, expiry: nowS - 10n }),
    );
    assert.equal(await b.get("old"), null);
    assert.equal(fs.existsSync(path.join(dir, fileName("old"))), false);
  });
});

test("file: torn, foreign and keyless files are a miss and are removed", async () => {
  await withBackend({}, async (b, dir) => {
    const good = entryBytes("k", enc.encode("value"));
    const cases: [string, Uint8Array][] = [
      ["empty", new Uint8Array(0)],
      ["short header", good.subarray(0, 10)],
      ["header only", good.subarray(0, 14)],
      ["truncated key", good.subarray(0, 18)],
      ["bad magic", entryBytes("k", enc.encode("v"), { magic: [0x50, 0x4b] })],
      ["bad version", entryBytes("k", enc.encode("v"), { version: 2 })],
      ["unknown flag", entryBytes("k", enc.encode("v"), { flags: 0x0103 })],
      ["keyless (cannot be verified)", entryBytes(null, enc.encode("v"))],
      ["truncated value", entryBytes("k", enc.encode("value"), { flags: 7 }).subarray(0, 30)],
      [
        "value longer than declared",
        new Uint8Array([...entryBytes("k", enc.encode("v"), { flags: 7 }), 0]),
      ],
      [
        "truncated length field",
        entryBytes("k", enc.encode("value"), { flags: 7 }).subarray(0, 22),
      ],
      ["foreign text", enc.encode("hello, this is not a cache entry at all")],
    ];
    const p = path.join(dir, fileName("k"));
    for (const [what, bytes] of cases) {
      fs.writeFileSync(p, bytes);
      assert.equal(await b.get("k"), null, what);
      assert.equal(fs.existsSync(p), false, `${what}: removed`);
      fs.writeFileSync(p, bytes);
      assert.equal(await b.exists("k"), false, `${what}: exists`);
      assert.equal(await b.capabilities.ttl.ttl("k"), null, `${what}: ttl`);
      assert.equal(await b.capabilities.ttl.expire("k", 10), false, `${what}: expire`);
      fs.rmSync(p, { force: true });
    }
    fs.writeFileSync(p, good);
    assert.deepEqual(await b.get("k"), enc.encode("value"), "a good file (no length) is served");
    fs.writeFileSync(p, entryBytes("k", enc.encode("value"), { flags: 7 }));
    assert.deepEqual(await b.get("k"), enc.encode("value"), "a good file (length) is served");
  });
});

test("file: a file holding another key (collision / foreign) is a miss and not served", async () => {
  await withBackend({}, async (b, dir) => {
    const p = path.join(dir, fileName("mine"));
    fs.writeFileSync(p, entryBytes("other", enc.encode("not yours")));
    assert.equal(await b.get("mine"), null);
    assert.equal(await b.exists("mine"), false);
    assert.equal(await b.capabilities.ttl.expire("mine", 10), false);
    // A key that is a prefix of the stored one, and a longer one.
    fs.writeFileSync(p, entryBytes("mine-and-more", enc.encode("x")));
    assert.equal(await b.get("mine"), null);
    fs.writeFileSync(p, entryBytes("min", enc.encode("x")));
    assert.equal(await b.get("mine"), null);
    await b.set("mine", enc.encode("ok"));
    assert.deepEqual(await b.get("mine"), enc.encode("ok"));
  });
});

test("file: a symlink is a miss, never followed for reads or writes", async () => {
  await withBackend({}, async (b, dir) => {
    const outside = path.join(path.dirname(dir), "outside-target");
    const planted = entryBytes("k", enc.encode("planted"));
    fs.writeFileSync(outside, planted);
    const p = path.join(dir, fileName("k"));
    fs.symlinkSync(outside, p);
    assert.equal(await b.get("k"), null, "symlinked entry is a miss");
    assert.equal(fs.existsSync(p), false, "the link is removed");
    assert.deepEqual(new Uint8Array(fs.readFileSync(outside)), planted, "target untouched");
    fs.symlinkSync(outside, p);
    assert.equal(await b.exists("k"), false);
    assert.equal(await b.capabilities.ttl.expire("k", 5), false, "expire does not follow");
    assert.deepEqual(new Uint8Array(fs.readFileSync(outside)), planted, "target untouched");
    await b.set("k", enc.encode("real"));
    assert.deepEqual(
      new Uint8Array(fs.readFileSync(outside)),
      planted,
      "set did not write through",
    );
    assert.equal(fs.lstatSync(p).isSymbolicLink(), false);
    assert.deepEqual(await b.get("k"), enc.encode("real"));
  });
});

test("file: keys cannot name paths outside the directory", async () => {
  await withBackend({}, async (b, dir) => {
    const parent = path.dirname(dir);
    const before = fs.readdirSync(parent).sort();
    const keys = ["../escape", "../../etc/passwd", "/etc/passwd", "..\\..\\x", "a/b/c", "\0", "."];
    for (const key of keys) {
      await b.set(key, enc.encode(key));
      assert.deepEqual(await b.get(key), enc.encode(key));
    }
    assert.deepEqual(fs.readdirSync(parent).sort(), before, "nothing created next to the cache");
    const names = fs.readdirSync(dir).filter((n) => !n.startsWith("."));
    assert.deepEqual(names.sort(), keys.map(fileName).sort());
    assert.throws(() => new FileBackend({ directory: "/tmp/a\0b" }), CacheConfigError);
  });
});

test("file: bad options are CacheConfigErrors naming the option", () => {
  const cases: [FileBackendOptions, string][] = [
    [{ maxEntries: 0 }, "FileBackend.maxEntries"],
    [{ maxSizeBytes: -1 }, "FileBackend.maxSizeBytes"],
    [{ maxValueBytes: 1.5 }, "FileBackend.maxValueBytes"],
    [{ lockTimeoutMs: NaN }, "FileBackend.lockTimeoutMs"],
    [{ fileMode: 0o1777 }, "FileBackend.fileMode"],
    [{ dirMode: -1 }, "FileBackend.dirMode"],
    [{ directory: "" }, "FileBackend.directory"],
  ];
  for (const [opts, option] of cases) {
    assert.throws(() => new FileBackend(opts), (e: unknown) => {
      assert.ok(e instanceof CacheConfigError);
      assert.equal(e.option, option);
      return true;
    });
  }
});

test("file: values above maxValueBytes are refused; large values use the async path", async () => {
  await withBackend({ maxValueBytes: 4 * 1024 * 1024 }, async (b) => {
    const big = new Uint8Array(3 * 1024 * 1024 + 7).map((_, i) => (i * 31) & 0xff);
    await b.set("big", big);
    assert.deepEqual(await b.get("big"), big);
    await assert.rejects(b.set("huge", new Uint8Array(4 * 1024 * 1024 + 1)), (e: unknown) => {
      assert.ok(e instanceof BackendError && e.kind === "permanent");
      return true;
    });
    assert.equal(await b.exists("huge"), false);
  });
});

test("file: lone surrogates in keys are refused (they would alias another key)", async () => {
  await withBackend({}, async (b) => {
    await assert.rejects(b.set("a\uD800", enc.encode("x")), BackendError);
    await b.set("a\uFFFD", enc.encode("y"));
    await assert.rejects(b.get("a\uD800"), BackendError);
  });
});

/** Entries written by one backend, then aged by hand: entry i was last used `100 - i` s ago. */
function seedAged(dir: string, keys: string[], valueBytes: number): void {
  const now = Date.now();
  keys.forEach((key, i) => {
    const p = path.join(dir, fileName(key));
    fs.writeFileSync(p, entryBytes(key, new Uint8Array(valueBytes), { flags: 7 }), { mode: 0o600 });
    const t = new Date(now - (100 - i) * 1000);
    fs.utimesSync(p, t, t);
  });
}

test("file: eviction by entry count removes the least recently used down to 70 %", async () => {
  await withBackend({ maxEntries: 10 }, async (b, dir) => {
    const keys = Array.from({ length: 9 }, (_, i) => `k${i}`);
    seedAged(dir, keys, 10);
    assert.deepEqual(await b.get("k0"), new Uint8Array(10)); // k0 becomes the most recent
    const r = await pruneNow(b);
    assert.equal(r.evicted, 2);
    assert.equal(r.entries, 7);
    const left = keys.filter((k) => fs.existsSync(path.join(dir, fileName(k))));
    assert.deepEqual(left, ["k0", "k3", "k4", "k5", "k6", "k7", "k8"]);
  });
});

test("file: eviction by bytes removes the least recently used down to 70 %", async () => {
  await withBackend({ maxSizeBytes: 10_000 }, async (b, dir) => {
    const keys = Array.from({ length: 10 }, (_, i) => `b${i}`);
    seedAged(dir, keys, 1000); // 10 × (14 + 4 + 2 + 8 + 1000) = 10 280 bytes ≥ 9000
    await b.get("b1");
    const r = await pruneNow(b);
    // Down to ≤ 7000 bytes: 6 files of 1028 bytes remain.
    assert.equal(r.entries, 6);
    assert.ok(r.bytes <= 7000);
    const left = keys.filter((k) => fs.existsSync(path.join(dir, fileName(k))));
    assert.deepEqual(left, ["b1", "b5", "b6", "b7", "b8", "b9"]);
  });
});

test("file: below 90 % nothing is evicted", async () => {
  await withBackend({ maxEntries: 10 }, async (b, dir) => {
    seedAged(dir, Array.from({ length: 8 }, (_, i) => `n${i}`), 1);
    const r = await pruneNow(b);
    assert.equal(r.evicted, 0);
    assert.equal(r.entries, 8);
  });
});

test("file: writes past the limits trigger eviction on their own (amortized)", async () => {
  const b = new TempFileBackend({ maxEntries: 20 });
  const dir = b.directory;
  try {
    const entries = () => fs.readdirSync(dir).filter((n) => /^[0-9a-f]{64}$/.test(n)).length;
    // A write starts the maintenance in the background; it holds the eviction lock, and writes made
    // while it runs start none (amortized). On a loaded host it outlasts a fixed sleep, and the
    // writes that follow find nothing left to trigger them: wait for it after each write instead.
    const evicting = () => fs.existsSync(path.join(dir, ".locks", "evict.lock"));
    for (let i = 0; i < 60; i++) {
      await b.set(`auto${i}`, new Uint8Array(8));
      await sleep(5); // the maintenance this write may have started takes the lock
      assert.ok(await until(() => !evicting()), "the maintenance ended");
    }
    const count = entries();
    assert.ok(count < 60 && count <= 26, `entries after 60 writes with maxEntries 20: ${count}`);
    assert.ok(fs.existsSync(path.join(dir, fileName("auto59"))), "the newest entry is kept");
    assert.equal(fs.existsSync(path.join(dir, fileName("auto0"))), false, "the oldest is gone");
  } finally {
    await b.close();
  }
});

test("file: maintenance removes orphan temp files but not fresh ones", async () => {
  await withBackend({}, async (b, dir) => {
    const old = path.join(dir, ".tmp-orphan-of-a-killed-writer");
    const fresh = path.join(dir, ".tmp-in-progress");
    fs.writeFileSync(old, new Uint8Array(100));
    fs.writeFileSync(fresh, new Uint8Array(100));
    const t = new Date(Date.now() - 3600_000);
    fs.utimesSync(old, t, t);
    const r = await pruneNow(b);
    assert.ok(r.cleaned >= 1);
    assert.equal(fs.existsSync(old), false);
    assert.equal(fs.existsSync(fresh), true);
  });
});

test("file: deleteByPrefix('') empties the cache and its tag index", async () => {
  await withBackend({}, async (b, dir) => {
    await b.set("a", enc.encode("1"));
    await b.set("b", enc.encode("2"), 60);
    await b.capabilities.tags.addTags("a", ["t"]);
    fs.writeFileSync(path.join(dir, fileName("junk")), enc.encode("junk")); // foreign: removed too
    assert.equal(await b.capabilities.prefix.deleteByPrefix(""), 2);
    assert.deepEqual(fs.readdirSync(dir).filter((n) => !n.startsWith(".")), []);
    assert.deepEqual(fs.readdirSync(path.join(dir, ".tags")), []);
  });
});

test("file: a tag index survives in the directory for another instance", async () => {
  await withBackend({}, async (b, dir) => {
    await b.set("x", enc.encode("1"));
    await b.capabilities.tags.addTags("x", ["shared"]);
    const other = new FileBackend({ directory: dir });
    try {
      assert.deepEqual(await other.capabilities.tags.invalidateTags(["shared"]), ["x"]);
    } finally {
      await other.close();
    }
    assert.equal(await b.get("x"), null);
  });
});

test("file: an unusable directory gives typed errors and an unhealthy check", async () => {
  const root = tempDir();
  try {
    const notDir = path.join(root, "file");
    fs.writeFileSync(notDir, "x");
    const b = new FileBackend({ directory: notDir });
    const h = await b.healthCheck();
    assert.equal(h.healthy, false);
    assert.equal(h.backendType, "file");
    assert.ok(typeof h.details?.error === "string");
    await assert.rejects(b.get("k"), BackendError);
    await assert.rejects(b.set("k", enc.encode("v")), BackendError);
    await b.close();
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

const POSIX = process.platform === "win32"
  ? { ignore: true, ignoreReason: "no POSIX modes or owners on Windows" }
  : {};

test(
  "file: a pre-existing directory writable by others is tightened (ours) with a warning",
  async () => {
    const root = tempDir();
    const logs = await captureLogs("warning");
    try {
      const dir = path.join(root, "cache");
      fs.mkdirSync(dir);
      fs.chmodSync(dir, 0o777);
      const b = new FileBackend({ directory: dir });
      await b.set("k", enc.encode("v"));
      await b.close();
      assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
      const warned = logs.matching(/writable by other users/);
      assert.equal(warned.length, 1, "one warning");
      assert.equal(warned[0].level, "warning");
      assert.deepEqual(warned[0].category, ["cachekit", "backend", "file"]);
      // A mode the options allow is left alone.
      fs.chmodSync(dir, 0o770);
      const shared = new FileBackend({ directory: dir, dirMode: 0o770 });
      await shared.set("k", enc.encode("v"));
      await shared.close();
      assert.equal(fs.statSync(dir).mode & 0o777, 0o770);
    } finally {
      await logs.stop();
      fs.rmSync(root, { recursive: true, force: true });
    }
  },
  POSIX,
);

test("file: another user's directory writable by others is refused", async () => {
  const root = tempDir();
  try {
    const dir = path.join(root, "cache");
    fs.mkdirSync(dir);
    fs.chmodSync(dir, 0o777);
    try {
      fs.chownSync(dir, 65534, 65534); // needs root (CI runs as root)
    } catch {
      console.warn("skipping: cannot give the directory to another user here");
      return;
    }
    const b = new FileBackend({ directory: dir });
    const e = await b.set("k", enc.encode("v")).then(() => null, (e) => e);
    assert.ok(e instanceof BackendError, String(e));
    assert.equal(e.kind, "permanent");
    assert.match(e.message, /writable by other users.*refusing/);
    assert.equal((await b.healthCheck()).healthy, false);
    await b.close();
    assert.equal(fs.statSync(dir).mode & 0o777, 0o777, "another user's directory is not changed");
    assert.deepEqual(fs.readdirSync(dir), [], "nothing written into it");
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}, POSIX);

test("file: an entry file far above the size limit (sparse 1 GiB) is a miss and removed", async () => {
  await withBackend({}, async (b, dir) => {
    const p = path.join(dir, fileName("big"));
    fs.writeFileSync(p, entryBytes("big", enc.encode("v")));
    fs.truncateSync(p, 1024 * 1024 * 1024); // sparse: no disk used, never read
    assert.equal(await b.get("big"), null);
    assert.equal(fs.existsSync(p), false, "the oversized file was removed");
    await b.set("big", enc.encode("v2"));
    assert.deepEqual(await b.get("big"), enc.encode("v2"));
  });
});

test("file: a writing process rescans periodically and removes orphan temp files", async () => {
  const realNow = Date.now;
  await withBackend({}, async (b, dir) => {
    await b.set("a", enc.encode("1")); // the first write's scan
    await pruneNow(b); // settle: the scan has run
    // A writer SIGKILLed after that scan leaves a temp file; one running now has a fresh one.
    const orphan = path.join(dir, ".tmp-of-a-killed-writer");
    const live = path.join(dir, ".tmp-of-a-live-writer");
    fs.writeFileSync(orphan, new Uint8Array(1000));
    fs.writeFileSync(live, new Uint8Array(1000));
    const old = new Date(realNow() - 3600_000);
    fs.utimesSync(orphan, old, old);
    try {
      // Minutes later (the clock moves; the live writer keeps writing), this process writes again.
      Date.now = () => realNow() + 6 * 60_000;
      const fresh = new Date(Date.now());
      fs.utimesSync(live, fresh, fresh);
      await b.set("b", enc.encode("2")); // starts the background maintenance
      for (let i = 0; i < 500 && fs.existsSync(orphan); i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      Date.now = realNow;
    }
    assert.equal(fs.existsSync(orphan), false, "the orphan was removed without an explicit prune");
    assert.equal(fs.existsSync(live), true, "a live writer's temp file is kept");
  });
});

test("file: defaultCacheDirectory follows the OS conventions", () => {
  assert.equal(
    defaultCacheDirectory({ platform: "linux", env: { XDG_CACHE_HOME: "/xdg" }, home: "/h" }),
    "/xdg/cachekit",
  );
  assert.equal(
    defaultCacheDirectory({ platform: "linux", env: {}, home: "/h" }),
    "/h/.cache/cachekit",
  );
  assert.equal(
    defaultCacheDirectory({ platform: "linux", env: { XDG_CACHE_HOME: "rel" }, home: "/h" }),
    "/h/.cache/cachekit",
    "a relative XDG_CACHE_HOME is ignored (XDG spec)",
  );
  assert.equal(
    defaultCacheDirectory({ platform: "darwin", env: {}, home: "/Users/a" }),
    "/Users/a/Library/Caches/cachekit",
  );
  assert.equal(
    defaultCacheDirectory({
      platform: "win32",
      env: { LOCALAPPDATA: "C:\\Users\\a\\AppData\\Local" },
    }),
    "C:\\Users\\a\\AppData\\Local\\cachekit",
  );
});

test("file: lock leases under contention — never two valid holders, even with abandoned leases", async () => {
  await withBackend({}, async (b) => {
    const lock = b.capabilities.lock;
    const holders: { expiresAt: number; released: boolean }[] = [];
    let acquired = 0, abandoned = 0;
    const violations: string[] = [];
    const worker = async (w: number) => {
      for (let i = 0; i < 12; i++) {
        const before = Date.now();
        const h = await lock.acquire("contended", { leaseMs: 60, waitMs: 5000 });
        if (h === null) {
          violations.push(`worker ${w} timed out`);
          continue;
        }
        const now = Date.now();
        const others = holders.filter((x) => !x.released && now < x.expiresAt);
        if (others.length > 0) violations.push(`two holders at ${now}`);
        const me = { expiresAt: before + 60, released: false };
        holders.push(me);
        acquired++;
        await new Promise((r) => setTimeout(r, 2));
        if ((w + i) % 5 === 0) {
          abandoned++; // never released: others must wait for the lease
        } else {
          me.released = true;
          await h.release();
        }
      }
    };
    await Promise.all(Array.from({ length: 6 }, (_, w) => worker(w)));
    assert.deepEqual(violations, []);
    assert.equal(acquired, 72);
    assert.ok(abandoned > 5, "some leases were taken over after expiring");
  });
});

test("file: a lock wait under way when close() runs rejects as closed, and takes no lock after it", async () => {
  const root = tempDir();
  try {
    // Two backend objects on one directory (two processes): the directory outlives the close.
    const one = new FileBackend({ directory: root });
    const two = new FileBackend({ directory: root });
    const held = await two.capabilities.lock.acquire("job", { leaseMs: 10_000, waitMs: 0 });
    assert.ok(held !== null);
    const t0 = Date.now();
    const waiting = one.capabilities.lock.acquire("job", { leaseMs: 10_000, waitMs: 10_000 });
    waiting.catch(() => {});
    await sleep(50); // one waits for two's lock
    await one.close();
    await held.release(); // free now: a wait that went on after close() took it
    await assert.rejects(waiting, (e) => e instanceof BackendError && e.kind === "closed");
    assert.ok(Date.now() - t0 < 5000, `ended ${Date.now() - t0} ms after it started`);
    const again = await two.capabilities.lock.acquire("job", { leaseMs: 10_000, waitMs: 0 });
    assert.ok(again !== null, "the closed backend holds no lock");
    await again.release();
    await two.close();
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
