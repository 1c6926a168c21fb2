/**
 * The values of the goals bench (issue 14): a ~1 KB record of the shape applications cache (about
 * 20 fields: ids, strings, a nested object, an array of strings, numbers, booleans, an ISO date
 * string; ~770 bytes as MessagePack) and larger values built from it: a 10 KB list, a 100 KB page,
 * 1 MB and 10 MB lists. Deterministic per `id`, a fresh object graph per call (what a function
 * that loads a row returns).
 *
 * @module
 */

/** The ~1 KB record. */
export interface GoalRecord {
  id: number;
  uuid: string;
  accountId: number;
  name: string;
  email: string;
  phone: string;
  role: string;
  active: boolean;
  verified: boolean;
  score: number;
  balance: number;
  loginCount: number;
  createdAt: string;
  updatedAt: string;
  locale: string;
  timezone: string;
  tags: string[];
  address: { street: string; city: string; zip: string; country: string; geo: number[] };
  preferences: { theme: string; newsletter: boolean; pageSize: number };
  bio: string;
}

const hex = (n: number, width: number) => (n >>> 0).toString(16).padStart(width, "0");

/**
 * The record of `id`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { record } from "./_goals_values.ts";
 *
 * assert.equal(record(7).id, 7);
 * assert.notEqual(record(7), record(7));
 * ```
 */
export function record(id: number): GoalRecord {
  const h = Math.imul(id + 1, 2654435761);
  return {
    id,
    uuid: `${hex(h, 8)}-${hex(id, 4)}-4${hex(h >>> 20, 3)}-a${hex(h >>> 8, 3)}-${hex(h, 8)}${
      hex(id, 4)
    }`,
    accountId: 100_000 + (id % 977),
    name: `User Number ${id}`,
    email: `user.${id}@example.com`,
    phone: `+1-555-${String(id % 10_000).padStart(4, "0")}`,
    role: id % 5 === 0 ? "admin" : "member",
    active: id % 7 !== 0,
    verified: id % 3 === 0,
    score: (id % 1000) / 7,
    balance: 1234.5 + id,
    loginCount: id * 3,
    createdAt: new Date(Date.UTC(2024, 0, 1) + id * 60_000).toISOString(),
    updatedAt: new Date(Date.UTC(2025, 5, 1) + id * 60_000).toISOString(),
    locale: "en-US",
    timezone: "Europe/Berlin",
    tags: ["customer", "newsletter", `cohort-${id % 12}`, "beta", "eu-west"],
    address: {
      street: `${id} Long Street Name Avenue`,
      city: "Springfield",
      zip: String(10_000 + (id % 89_999)),
      country: "DE",
      geo: [52.52 + id / 1e6, 13.405 - id / 1e6],
    },
    preferences: { theme: "dark", newsletter: id % 2 === 0, pageSize: 50 },
    bio: `Lorem ipsum dolor sit amet, consectetur adipiscing elit, user ${id}. `.repeat(4),
  };
}

/** A list of `count` records starting at `from`. */
export function recordList(count: number, from = 0): GoalRecord[] {
  const out = new Array<GoalRecord>(count);
  for (let i = 0; i < count; i++) out[i] = record(from + i);
  return out;
}

/** A page of records, the shape of an API response: items plus paging fields. */
export interface GoalPage {
  page: number;
  pageSize: number;
  total: number;
  next: string | null;
  items: GoalRecord[];
}

/** A page of `count` records (page number `page`). */
export function recordPage(page: number, count: number): GoalPage {
  return {
    page,
    pageSize: count,
    total: count * 1000,
    next: `/api/users?page=${page + 1}`,
    items: recordList(count, page * count),
  };
}

/**
 * The sizes the bench uses, in records: how many ~770-byte records make ~10 KB, ~100 KB, ~1 MB
 * and ~10 MB as MessagePack.
 */
export const RECORDS_PER: {
  readonly kb10: number;
  readonly kb100: number;
  readonly mb1: number;
  readonly mb10: number;
} = {
  kb10: 13,
  kb100: 130,
  mb1: 1_300,
  mb10: 13_000,
};
