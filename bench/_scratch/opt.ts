import { cache } from "../../mod.ts";
import { record } from "../../bench/_goals_values.ts";
const loadRecord = async (id: number) => { await Promise.resolve(); return record(id); };
const f = cache(loadRecord, { name: "opt.freeze", backend: null, l1: { copy: "freeze" } });
await f(1);
for (let r = 0; r < 2000; r++) for (let i = 0; i < 200; i++) await f(1);
