/**
 * Every workspace declares the packages its code imports (issue 8: one pin per package, in the
 * root's Bun catalog). Production code's imports must be `dependencies`, since the image is
 * installed with `--production`; a package only tests or tooling import may be a
 * devDependency. Bun's workspace hoisting hides a missing declaration in development, so this
 * is the check that fails before the container does.
 */
import { describe, expect, test } from "bun:test";
import { Glob } from "bun";
import { repoRoot } from "@bazaar/testkit/fixtures";

interface Manifest {
  name: string;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  workspaces?: { packages: string[] };
}

const root = (await Bun.file(`${repoRoot}/package.json`).json()) as Manifest;
const workspaceDirs = (
  await Promise.all(root.workspaces!.packages.map(async (pattern) => Array.fromAsync(new Glob(`${pattern}/package.json`).scan({ cwd: repoRoot }))))
)
  .flat()
  .map((manifest) => manifest.replace(/\/package\.json$/, ""));

/** The package a bare import names (`@scope/name` or `name`), or undefined for relative, node: and bun: imports. */
function packageOf(specifier: string): string | undefined {
  if (specifier.startsWith(".") || specifier.startsWith("/") || /^(node|bun):/.test(specifier) || specifier === "bun") return undefined;
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
}

const importPattern = /^\s*(?:import|export)\s[^;]*?\sfrom\s+"([^"]+)"|^\s*import\s+"([^"]+)"|\bimport\("([^"]+)"\)/gm;

/** Packages imported by the workspace's files, split by whether a file is production code. */
async function importsOf(dir: string): Promise<{ production: Map<string, string>; other: Map<string, string> }> {
  const production = new Map<string, string>();
  const other = new Map<string, string>();
  for await (const file of new Glob("**/*.ts").scan({ cwd: `${repoRoot}/${dir}` })) {
    if (file.startsWith("node_modules/") || file.startsWith("gen/")) continue;
    const isTooling = file.includes(".test.") || file.startsWith("test/") || file.includes("/test/") || file === "drizzle.config.ts";
    const source = await Bun.file(`${repoRoot}/${dir}/${file}`).text();
    for (const match of source.matchAll(importPattern)) {
      const name = packageOf(match[1] ?? match[2] ?? match[3]!);
      if (!name) continue;
      const into = isTooling ? other : production;
      if (!into.has(name)) into.set(name, `${dir}/${file}`);
    }
  }
  return { production, other };
}

describe("workspace dependencies", () => {
  test("the workspaces are found", () => {
    expect(workspaceDirs).toContain("platform");
    expect(workspaceDirs).toContain("services/inventory");
    expect(workspaceDirs.length).toBeGreaterThanOrEqual(10);
  });

  for (const dir of workspaceDirs.filter((d) => d !== "proto")) {
    test(`${dir} declares every package it imports (production code as dependencies)`, async () => {
      const manifest = (await Bun.file(`${repoRoot}/${dir}/package.json`).json()) as Manifest;
      const deps = new Set(Object.keys(manifest.dependencies ?? {}));
      const all = new Set([...deps, ...Object.keys(manifest.devDependencies ?? {})]);
      const { production, other } = await importsOf(dir);
      const problems = [
        ...[...production]
          .filter(([name]) => name !== manifest.name && !deps.has(name))
          .map(([name, file]) => `${name} (imported by ${file}) is not in dependencies`),
        ...[...other].filter(([name]) => name !== manifest.name && !all.has(name)).map(([name, file]) => `${name} (imported by ${file}) is not declared`),
      ];
      expect(problems).toEqual([]);
    });
  }
});
