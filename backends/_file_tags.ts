/**
 * The tag index of {@linkcode FileBackend}: `.tags/<sha256 of tag>/<entry file name>` holds the
 * key (and the entry's expiry). Adding is an atomic file write and invalidating lists one small
 * directory, so the index is safe across processes without locks.
 *
 * @module
 */
import { BackendError } from "../errors.ts";
import { checkTtl } from "./_common.ts";
import {
  encodeHead,
  encodeKey,
  entryName,
  expiryFor,
  isEntryName,
  sha256Hex,
} from "./_file_format.ts";
import { randomToken } from "./_file_lock.ts";
import { type FileStore, TYPE } from "./_file_store.ts";

/** The index directory of `tag`. */
export function tagDir(root: string, tag: string): string {
  return `${root}/.tags/${sha256Hex(`tag\0${tag}`)}`;
}

/** Record that `key` carries `tags` (each record expires with the entry). */
export async function addTags(
  store: FileStore,
  key: string,
  tags: readonly string[],
  ttlSeconds?: number | null,
): Promise<void> {
  const kb = store.keyBytes("addTags", key);
  checkTtl(TYPE, "addTags", ttlSeconds);
  if (!Array.isArray(tags) || tags.some((t) => typeof t !== "string")) {
    throw new BackendError("tags must be an array of strings", {
      kind: "permanent",
      backend: TYPE,
      operation: "addTags",
    });
  }
  const { root } = await store.init();
  const name = entryName(kb);
  const record = encodeHead(kb, expiryFor(ttlSeconds, Date.now()), 0);
  for (const tag of new Set(tags)) {
    const dir = tagDir(root, tag);
    for (let attempt = 0;; attempt++) {
      try {
        await store.ops.ensureDir(dir, store.dirMode);
        await store.ops.writeAtomic(`${dir}/.tmp-${randomToken()}`, `${dir}/${name}`, [record], {
          mode: store.fileMode,
          fsync: false,
          exactMode: store.fileMode !== 0o600,
        });
        break;
      } catch (e) {
        // The directory was removed by a concurrent invalidation: create it again.
        if ((e as { code?: string }).code !== "ENOENT" || attempt >= 3) throw e;
      }
    }
  }
}

/** Delete the entries listed in a tag directory and the directory. Resolves the keys deleted. */
export async function dropTagDir(
  store: FileStore,
  dir: string,
  deleted?: Set<string>,
): Promise<void> {
  const { root } = await store.init();
  for (const name of await store.ops.list(dir)) {
    if (!isEntryName(name)) continue;
    const indexPath = `${dir}/${name}`;
    const h = await store.readHeadAt(indexPath);
    if (h !== null && h !== "bad" && entryName(h.head.keyBytes) === name) {
      if (await store.ops.remove(store.entryPath(root, name))) {
        const key = new TextDecoder().decode(h.head.keyBytes);
        deleted?.add(key);
      }
    }
    await store.ops.remove(indexPath);
  }
  await store.ops.removeEmptyDir(dir);
}

/** Delete every entry carrying any of `tags`, and their index directories; the keys deleted. */
export async function invalidateTags(store: FileStore, tags: readonly string[]): Promise<string[]> {
  if (!Array.isArray(tags) || tags.some((t) => typeof t !== "string")) {
    throw new BackendError("tags must be an array of strings", {
      kind: "permanent",
      backend: TYPE,
      operation: "invalidateTags",
    });
  }
  const { root } = await store.init();
  const deleted = new Set<string>();
  for (const tag of new Set(tags)) await dropTagDir(store, tagDir(root, tag), deleted);
  return [...deleted];
}

/**
 * The index records first, so a value is never stored untagged (a crash in between leaves only
 * records of a missing entry, which maintenance removes); then the records an invalidation
 * removed meanwhile are written again, so the new value stays findable.
 */
export async function setWithTags(
  store: FileStore,
  key: string,
  value: Uint8Array,
  ttlSeconds: number | null | undefined,
  tags: readonly string[],
): Promise<void> {
  await addTags(store, key, tags, ttlSeconds);
  await store.write(key, value, ttlSeconds);
  const { root } = await store.init();
  const name = entryName(encodeKey(key));
  const missing: string[] = [];
  for (const tag of new Set(tags)) {
    if (await store.ops.lstat(`${tagDir(root, tag)}/${name}`) === null) missing.push(tag);
  }
  if (missing.length > 0) await addTags(store, key, missing, ttlSeconds);
}
