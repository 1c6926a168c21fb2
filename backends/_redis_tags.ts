/**
 * The tag index on Redis (`capabilities.tags`): one set per tag (`<keyPrefix>cachekit:tag:<tag>`)
 * holding the logical keys that carry it, written with the value in one Lua script where the
 * value and its tag sets can be (not on a cluster, not for a chunked value).
 *
 * @module
 */
import type { OperationOptions, TagCapability } from "./types.ts";
import {
  ADD_TAG_SCRIPT,
  DEL_SCRIPT,
  hasMagic,
  MAGIC_STR,
  POP_TAG_SCRIPT,
  SET_TAGGED_SCRIPT,
} from "./_redis_chunks.ts";
import { toBuffer } from "./_redis_driver.ts";
import { checkKey, checkTags, type RedisCore, ttlToMs } from "./_redis_core.ts";

/** Tag sets next to the values, under the same key prefix. */
export class RedisTags implements TagCapability {
  readonly #core: RedisCore;

  /** The capability over `core`'s connection. */
  constructor(core: RedisCore) {
    this.#core = core;
  }

  #tagKey(tag: string): string {
    return `${this.#core.keyPrefix}cachekit:tag:${tag}`;
  }

  /** Record that `key` carries `tags`; each tag set lives at least as long as its members. */
  async addTags(key: string, tags: readonly string[], ttlSeconds?: number | null): Promise<void> {
    checkKey(key, "addTags");
    checkTags(tags, "addTags");
    const ttlMs = ttlToMs(ttlSeconds, "addTags");
    await Promise.all([...new Set(tags)].map((tag) => {
      const tk = this.#tagKey(tag);
      return this.#core.run(
        "addTags",
        undefined,
        () => this.#core.driver.eval(ADD_TAG_SCRIPT, [tk], [key, String(ttlMs)]),
      );
    }));
  }

  /**
   * Store `value` under `key` and add it to its tag sets in one Lua script (tag sets first, then
   * the value), so the value is never stored without its tags. On a cluster the tag sets live in
   * other slots than the value, and a value larger than `chunkSizeBytes` is committed in several
   * steps: there the tags are added before the value is written and again after it (an
   * `invalidateTags` that ran in between would otherwise leave the new value untagged).
   */
  async setWithTags(
    key: string,
    value: Uint8Array,
    ttlSeconds: number | null | undefined,
    tags: readonly string[],
    opts?: OperationOptions,
  ): Promise<void> {
    checkKey(key, "set");
    checkTags(tags, "set");
    if (!(value instanceof Uint8Array)) return await this.#core.set(key, value, ttlSeconds, opts);
    if (this.#core.isCluster || value.length > this.#core.chunkSizeBytes || hasMagic(value)) {
      await this.addTags(key, tags, ttlSeconds);
      await this.#core.set(key, value, ttlSeconds, opts);
      await this.addTags(key, tags, ttlSeconds);
      return;
    }
    const ttlMs = ttlToMs(ttlSeconds, "set");
    const full = this.#core.full(key);
    const tagKeys = [...new Set(tags)].map((t) => this.#tagKey(t));
    await this.#core.run(
      "set",
      opts,
      () =>
        this.#core.driver.eval(SET_TAGGED_SCRIPT, [full, ...tagKeys], [
          MAGIC_STR,
          toBuffer(value),
          String(ttlMs),
          String(this.#core.graceMs),
          key,
        ]),
    );
  }

  /** Delete every key carrying any of `tags`, and the tag sets. Resolves the keys that existed. */
  async invalidateTags(tags: readonly string[]): Promise<string[]> {
    checkTags(tags, "invalidateTags");
    const memberLists = await Promise.all([...new Set(tags)].map((tag) => {
      const tk = this.#tagKey(tag);
      return this.#core.run(
        "invalidateTags",
        undefined,
        () => this.#core.driver.eval(POP_TAG_SCRIPT, [tk], []),
      );
    }));
    const members = new Set<string>();
    for (const list of memberLists) {
      for (const m of (list as unknown[]) ?? []) members.add(String(m));
    }
    const keys = [...members];
    const existed = await Promise.all(keys.map((k) => {
      const full = this.#core.full(k);
      return this.#core.run(
        "invalidateTags",
        undefined,
        () => this.#core.driver.eval(DEL_SCRIPT, [full], [MAGIC_STR, String(this.#core.graceMs)]),
      );
    }));
    return keys.filter((_, i) => Number(existed[i]) > 0);
  }
}
