// Flag parsing as users type it, through the built CLI: negative numbers after a space, decimal
// integers only, backslash escapes in --stop, and suggestions for misspelt flags and commands.
import { describe, expect, it } from "vitest";
import { closestName, numberFlag, unescapeFlag } from "../../src/cli/command.js";
import { HAS_BIN, mobilellm } from "./bin-helpers.js";

describe("flag helpers", () => {
  it("numberFlag takes decimal numbers only, integers without exponent", () => {
    expect(numberFlag({ n: "16" }, "n", { integer: true })).toBe(16);
    expect(numberFlag({ lr: "5e-4" }, "lr")).toBe(5e-4);
    expect(numberFlag({ p: ".5" }, "p")).toBe(0.5);
    for (const bad of ["0x10", "1e2", "0b11", "0o7", " 3", "", "Infinity", "1_000"]) {
      expect(() => numberFlag({ n: bad }, "n", { integer: true }), bad).toThrow(/--n expects an integer/);
    }
    for (const bad of ["0x10", "Infinity", "1.2.3", "NaN"]) expect(() => numberFlag({ t: bad }, "t"), bad).toThrow(/--t expects a number/);
  });

  it("unescapeFlag turns shell-typed escapes into characters and refuses unknown ones", () => {
    expect(unescapeFlag("\\n", "stop")).toBe("\n");
    expect(unescapeFlag("a\\tb\\\\n\\x41\\u00e9\\u{1F600}", "stop")).toBe("a\tb\\nA\u00e9\u{1F600}");
    expect(unescapeFlag("plain", "stop")).toBe("plain");
    expect(() => unescapeFlag("\\q", "stop")).toThrow(/--stop: unknown escape/);
  });

  it("closestName suggests a near name and nothing for a far one", () => {
    const names = ["temperature", "top-k", "top-p", "seed", "max-new-tokens", "model"];
    expect(closestName("temprature", names)).toBe("temperature");
    expect(closestName("max-new", names)).toBe("max-new-tokens");
    expect(closestName("sede", names)).toBe("seed");
    expect(closestName("banana", names)).toBeUndefined();
  });
});

describe.skipIf(!HAS_BIN)("the built CLI", () => {
  const gen = (...a: string[]) => mobilellm(["generate", "--prompt", "ROMEO:", ...a]);

  it("--seed -1 is read as the value -1 and refused with what to do instead", () => {
    const r = gen("--seed", "-1");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--seed expects an integer >= 0 and <= 4294967295, got "-1" (leave --seed out for a random seed)');
    expect(r.stderr).not.toMatch(/ambiguous/);
  });

  it("-n 0x10 and -n 1e2 are refused", () => {
    for (const n of ["0x10", "1e2"]) {
      const r = gen("-n", n);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`--max-new-tokens expects an integer >= 1, got "${n}" (write it in plain decimal digits, no exponent)`);
    }
  });

  it("--stop '\\n' stops at the first newline", () => {
    const r = gen("-n", "60", "--stop", "\\n", "--json");
    expect(r.code).toBe(0);
    const o = JSON.parse(r.stdout);
    expect(o.stop_reason).toBe("stop");
    expect(o.text).not.toContain("\n");
  });

  it("a misspelt flag or command gets a suggestion", () => {
    const r = gen("--temprature", "0.5");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("Unknown option '--temprature'; did you mean --temperature?");
    const c = mobilellm(["genrate"]);
    expect(c.code).toBe(2);
    expect(c.stderr).toContain('unknown command "genrate"; did you mean "generate"?');
  });
});
