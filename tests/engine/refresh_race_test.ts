/**
 * `f.refresh(...args)` while a miss of the same call computes (started before the refresh): the
 * miss's older result must not land over the refreshed one. Before, without a stampede lock
 * (`stampede: false`, or a backend without locks) it did, so the next call answered the value
 * the refresh had replaced.
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { cache, MemoryBackend } from "../../mod.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false, ttl: 60 } as const;

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 10));
}

for (const l1 of [true, false]) {
  for (const stampede of [true, false]) {
    test(`refresh: an older miss in flight does not land over it (l1 ${l1}, stampede ${stampede})`, async () => {
      let open!: () => void;
      const gate = new Promise<void>((r) => open = r);
      let version = "old";
      let started!: () => void;
      const missStarted = new Promise<void>((r) => started = r);
      const f = cache(async (_id: number) => {
        const mine = version;
        if (mine === "old") {
          started();
          await gate;
        }
        return mine;
      }, {
        ...bare,
        name: `refresh.race.${l1}.${stampede}`,
        backend: new MemoryBackend(),
        l1: { enabled: l1 },
        stampede: stampede ? {} : false,
      });
      const miss = f(1);
      await missStarted;
      version = "new";
      const refreshed = f.refresh(1);
      if (!stampede) assert.equal(await refreshed, "new");
      open();
      assert.equal(await miss, "old"); // it asked before the refresh
      assert.equal(await refreshed, "new");
      await settle();
      assert.equal(await f(1), "new");
    });
  }
}
