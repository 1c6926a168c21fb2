/**
 * `engine/_write_marks.ts`: an L1 fill from an L2 read is refused after a write of its key noted
 * since the read started, while one is under way, and (conservatively) once the bounded marks were
 * cleared; reads of other keys fill.
 *
 * @module
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { MAX_WRITE_MARKS, WriteMarks } from "../../engine/_write_marks.ts";

test("write marks: a write since the read, or one under way, refuses the fill; other keys fill", () => {
  const m = new WriteMarks();
  const read = m.seq;
  assert.equal(m.mayFill("a", read), true);
  m.begin("a");
  assert.equal(m.mayFill("a", m.seq), false, "under way: a read started now may see either value");
  assert.equal(m.mayFill("b", read), true, "another key");
  m.end("a");
  assert.equal(m.mayFill("a", read), false, "written since the read started");
  assert.equal(m.mayFill("a", m.seq), true, "a read started after the write");
  m.begin("a");
  m.begin("a");
  m.end("a");
  assert.equal(m.mayFill("a", m.seq), false, "one of two writes still under way");
  m.end("a");
  assert.equal(m.mayFill("a", m.seq), true);
});

test(`write marks: past ${MAX_WRITE_MARKS} keys the marks are cleared, and reads started before refuse their fill`, () => {
  const m = new WriteMarks();
  m.note("x");
  const read = m.seq;
  for (let i = 0; i < MAX_WRITE_MARKS + 1; i++) m.note(`k${i}`);
  assert.equal(m.mayFill("never-written", read), false, "cleared since the read: refused");
  const later = m.seq;
  assert.equal(m.mayFill("never-written", later), true);
  m.note("y");
  assert.equal(m.mayFill("never-written", later), true, "marks kept since the clear");
  assert.equal(m.mayFill("y", later), false);
});
