/**
 * A strict parser of the Prometheus text exposition format 0.0.4, written from the format's
 * specification (escapes `\\`, `\"`, `\n` in label values; `# HELP` / `# TYPE` headers; histogram
 * `_bucket`/`_sum`/`_count` samples belong to their family). Throws (assert) on anything malformed.
 *
 * @module
 */
import assert from "node:assert/strict";

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
export interface Family {
  name: string;
  type: string;
  help: string;
  samples: Sample[];
}

/** Parse the Prometheus text format (0.0.4) strictly; throws on anything malformed. */
export function parsePrometheus(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  let current: Family | undefined;
  assert.ok(text === "" || text.endsWith("\n"), "exposition ends with a line feed");
  for (const line of text.split("\n")) {
    if (line === "") continue;
    let m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (m) {
      const help = m[2].replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
      current = { name: m[1], type: "untyped", help, samples: [] };
      assert.ok(!families.has(m[1]), `family ${m[1]} declared once`);
      families.set(m[1], current);
      continue;
    }
    m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (m) {
      assert.equal(current?.name, m[1], "TYPE follows its HELP");
      current!.type = m[2];
      continue;
    }
    assert.ok(!line.startsWith("#"), `unexpected comment ${line}`);
    const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
    assert.ok(nameMatch, `sample name in ${line}`);
    const name = nameMatch[0];
    let i = name.length;
    const labels: Record<string, string> = {};
    if (line[i] === "{") {
      i++;
      while (line[i] !== "}") {
        const ln = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(i));
        assert.ok(ln, `label name at ${i} in ${line}`);
        i += ln[0].length;
        assert.equal(line.slice(i, i + 2), '="');
        i += 2;
        let value = "";
        for (;;) {
          const c = line[i++];
          assert.ok(c !== undefined, "unterminated label value");
          if (c === '"') break;
          if (c === "\\") {
            const e = line[i++];
            if (e === "n") value += "\n";
            else if (e === "\\" || e === '"') value += e;
            else assert.fail(`bad escape \\${e}`);
          } else {
            value += c;
          }
        }
        assert.ok(!(ln[0] in labels), "label repeated");
        labels[ln[0]] = value;
        if (line[i] === ",") i++;
      }
      i++;
    }
    assert.equal(line[i], " ", `space before the value in ${line}`);
    const raw = line.slice(i + 1);
    const value = raw === "+Inf" ? Infinity : raw === "-Inf" ? -Infinity : Number(raw);
    assert.ok(raw === "NaN" || !Number.isNaN(value), `numeric value in ${line}`);
    assert.ok(current, "sample after a family header");
    const base = current.type === "histogram" ? name.replace(/_(bucket|sum|count)$/, "") : name;
    assert.equal(base, current.name, `sample ${name} belongs to ${current.name}`);
    current.samples.push({ name, labels, value });
  }
  return families;
}
