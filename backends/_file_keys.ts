/**
 * The key-space capabilities of {@linkcode FileBackend}: TTL inspection and refresh (a header
 * rewrite in place) and prefix deletion (a scan of the entry headers, also under every tenant
 * segment). Both act on existing entries by key rather than on values.
 *
 * @module
 */
import { BackendError } from "../errors.ts";
import { checkTtl } from "./_common.ts";
import { underAnyTenant } from "./types.ts";
import {
  encodeExpiryPatch,
  encodeKey,
  entryName,
  expiryFor,
  headLength,
  isEntryName,
  parseHead,
  sameBytes,
} from "./_file_format.ts";
import { breathe, type FileStore, TYPE } from "./_file_store.ts";
import { dropTagDir } from "./_file_tags.ts";

function checkPrefix(operation: string, prefix: string): string {
  if (typeof prefix !== "string") {
    throw new BackendError("prefix must be a string", {
      kind: "permanent",
      backend: TYPE,
      operation,
    });
  }
  return prefix;
}

/** Remaining TTL in seconds: `null` when absent, `Infinity` when it never expires. */
export async function ttl(store: FileStore, key: string): Promise<number | null> {
  const kb = store.keyBytes("ttl", key);
  const { root } = await store.init();
  const e = await store.readEntry(root, kb, false);
  if (e === null) return null;
  return e.head.expiresAtMs === 0 ? Infinity : (e.head.expiresAtMs - Date.now()) / 1000;
}

/** Set a new TTL on `key`; `false` when it has no live entry. */
export async function expire(store: FileStore, key: string, ttlSeconds: number): Promise<boolean> {
  const kb = store.keyBytes("expire", key);
  checkTtl(TYPE, "expire", ttlSeconds);
  const { root } = await store.init();
  const path = store.entryPath(root, entryName(kb));
  const result = await store.ops.patch(path, headLength(kb.length), (head, stat) => {
    const p = parseHead(head, stat.size);
    if (!("keyBytes" in p) || !sameBytes(p.keyBytes, kb)) return null;
    if (p.expiresAtMs !== 0 && Date.now() >= p.expiresAtMs) return null;
    return { offset: 4, bytes: encodeExpiryPatch(p.flags, expiryFor(ttlSeconds, Date.now())) };
  });
  return result === "patched";
}

/** Delete every entry whose key starts with `prefix` (`""` also drops the tag index). */
export async function deleteByPrefix(store: FileStore, prefix: string): Promise<number> {
  const pb = encodeKey(checkPrefix("deleteByPrefix", prefix));
  const count = await deleteWhere(
    store,
    (kb) => kb.length >= pb.length && sameBytes(kb.subarray(0, pb.length), pb),
  );
  if (prefix === "") {
    const { root } = await store.init();
    for (const tagDir of await store.ops.list(`${root}/.tags`)) {
      await dropTagDir(store, `${root}/.tags/${tagDir}`);
    }
  }
  return count;
}

/** Delete every entry `t:{segment}:{prefix}…`, whatever the tenant segment. */
export function deleteByTenantPrefix(store: FileStore, prefix: string): Promise<number> {
  checkPrefix("deleteByTenantPrefix", prefix);
  const dec = new TextDecoder();
  return deleteWhere(store, (kb) => underAnyTenant(dec.decode(kb), prefix));
}

/** Remove every entry whose key bytes match; resolves how many were live. */
async function deleteWhere(
  store: FileStore,
  match: (keyBytes: Uint8Array) => boolean,
): Promise<number> {
  const { root } = await store.init();
  let count = 0;
  let i = 0;
  for (const name of await store.ops.list(root)) {
    await breathe(i++);
    if (!isEntryName(name)) continue;
    const path = store.entryPath(root, name);
    const h = await store.readHeadAt(path);
    if (h === null) continue;
    if (h === "bad") {
      await store.ops.remove(path).catch(() => false);
      continue;
    }
    const kb = h.head.keyBytes;
    if (!match(kb)) continue;
    if (entryName(kb) !== name) continue; // a foreign file filed under another name
    const live = h.head.expiresAtMs === 0 || Date.now() < h.head.expiresAtMs;
    if (await store.ops.remove(path) && live) count++;
  }
  return count;
}
