/**
 * Generates the demo product images: one small, self-contained SVG per product
 * in the catalog seed data, written to bff/web/public/images/products/<slug>.svg.
 *
 *   bun scripts/make-product-images.ts
 *
 * Output is deterministic (colours come from a hash of the slug), needs no
 * network, fonts or external images, and each file stays well under 3 KB.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { seedCategories, seedProducts, type SeedProduct } from "../services/catalog/src/seed-data.ts";

const outDir = fileURLToPath(new URL("../bff/web/public/images/products/", import.meta.url));

/** FNV-1a 32-bit hash. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** HSL (h in degrees, s/l in 0..100) to #rrggbb. */
function hsl(h: number, s: number, l: number): string {
  const hh = ((h % 360) + 360) % 360;
  const ss = s / 100;
  const ll = l / 100;
  const k = (n: number) => (n + hh / 30) % 12;
  const a = ss * Math.min(ll, 1 - ll);
  const f = (n: number) => ll - a * Math.max(-1, Math.min(k(n) - 3, 9 - k(n), 1));
  const hex = (x: number) =>
    Math.round(x * 255)
      .toString(16)
      .padStart(2, "0");
  return `#${hex(f(0))}${hex(f(8))}${hex(f(4))}`;
}

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&apos;");
}

/** Base background hue per category; each product varies around it. */
const categoryHue: Record<string, number> = {
  kitchen: 20, // warm peach
  "coffee-tea": 35, // latte
  audio: 250, // lavender
  outdoor: 130, // sage
  "desk-stationery": 205, // sky
  "home-textiles": 330, // rose
};

interface Palette {
  bg: string;
  main: string;
  dark: string;
  light: string;
  accent: string;
}

function palette(p: SeedProduct): Palette {
  const h = hash(p.slug);
  const base = categoryHue[p.categorySlug] ?? hash(p.categorySlug) % 360;
  const bgHue = base + ((h & 0xff) % 40) - 20;
  const mainHue = (h >>> 8) % 360;
  const accentHue = mainHue + 150 + ((h >>> 17) % 60);
  return {
    bg: hsl(bgHue, 55 + ((h >>> 24) % 20), 90),
    main: hsl(mainHue, 45, 55),
    dark: hsl(mainHue, 35, 32),
    light: hsl(mainHue, 50, 78),
    accent: hsl(accentHue, 55, 62),
  };
}

type Drawing = (c: Palette, v: number) => string;

/** Category illustrations, drawn in roughly x 60..340, y 50..320. */
const drawings: Record<string, Drawing> = {
  // A frying pan seen from above, with a fried egg.
  kitchen: (c, v) =>
    `<rect x="238" y="176" width="120" height="24" rx="12" fill="${c.dark}" transform="rotate(${-12 + (v % 24)} 238 188)"/>` +
    `<circle cx="170" cy="188" r="100" fill="${c.dark}"/>` +
    `<circle cx="170" cy="188" r="84" fill="${c.main}"/>` +
    `<ellipse cx="160" cy="196" rx="42" ry="34" fill="#fffdf7"/>` +
    `<circle cx="166" cy="190" r="15" fill="#f4b942"/>`,
  // A mug on a saucer, with steam.
  "coffee-tea": (c, v) =>
    `<path d="M160 ${92 - (v % 10)}q-14 -18 0 -36M200 ${96 - (v % 14)}q-14 -18 0 -36M240 ${92 - (v % 8)}q-14 -18 0 -36" stroke="${c.dark}" stroke-width="7" fill="none" stroke-linecap="round" opacity=".45"/>` +
    `<ellipse cx="200" cy="300" rx="130" ry="20" fill="${c.dark}" opacity=".25"/>` +
    `<circle cx="290" cy="200" r="38" fill="none" stroke="${c.main}" stroke-width="18"/>` +
    `<rect x="110" y="120" width="180" height="175" rx="26" fill="${c.main}"/>` +
    `<rect x="110" y="180" width="180" height="34" fill="${c.accent}"/>` +
    `<ellipse cx="200" cy="124" rx="84" ry="10" fill="${c.dark}"/>`,
  // Over-ear headphones.
  audio: (c, v) =>
    `<path d="M100 230V190a100 100 0 0 1 200 0v40" stroke="${c.dark}" stroke-width="18" fill="none" stroke-linecap="round"/>` +
    `<rect x="70" y="200" width="64" height="104" rx="26" fill="${c.main}"/>` +
    `<rect x="266" y="200" width="64" height="104" rx="26" fill="${c.main}"/>` +
    `<rect x="118" y="214" width="24" height="76" rx="10" fill="${c.dark}"/>` +
    `<rect x="258" y="214" width="24" height="76" rx="10" fill="${c.dark}"/>` +
    `<circle cx="102" cy="252" r="${10 + (v % 8)}" fill="${c.accent}"/>` +
    `<circle cx="298" cy="252" r="${10 + (v % 8)}" fill="${c.accent}"/>`,
  // A tent under the sun, with hills behind.
  outdoor: (c, v) =>
    `<circle cx="${290 + (v % 40)}" cy="90" r="34" fill="#f6c453"/>` +
    `<path d="M40 300L130 170l70 80 60-110 100 160z" fill="${c.light}"/>` +
    `<path d="M200 110L80 300h240z" fill="${c.main}"/>` +
    `<path d="M200 110l-36 190h72z" fill="${c.dark}"/>` +
    `<path d="M200 180l-18 120h36z" fill="${c.accent}"/>` +
    `<rect x="40" y="298" width="320" height="10" rx="5" fill="${c.dark}" opacity=".5"/>`,
  // A notebook with a pen.
  "desk-stationery": (c, v) =>
    `<rect x="92" y="70" width="190" height="240" rx="12" fill="${c.main}"/>` +
    `<rect x="92" y="70" width="30" height="240" rx="8" fill="${c.dark}"/>` +
    `<rect x="150" y="110" width="104" height="44" rx="6" fill="#fffdf7" opacity=".9"/>` +
    `<rect x="240" y="70" width="14" height="${110 + (v % 60)}" fill="${c.accent}"/>` +
    `<g transform="rotate(${18 + (v % 14)} 300 190)">` +
    `<rect x="288" y="80" width="24" height="190" rx="8" fill="${c.accent}"/>` +
    `<path d="M288 270h24l-12 30z" fill="${c.dark}"/>` +
    `<rect x="288" y="96" width="24" height="12" fill="${c.dark}"/></g>`,
  // A stack of folded blankets.
  "home-textiles": (c, v) => {
    const stripe = 20 + (v % 50);
    return (
      `<rect x="80" y="230" width="240" height="66" rx="22" fill="${c.dark}"/>` +
      `<rect x="96" y="164" width="220" height="66" rx="22" fill="${c.accent}"/>` +
      `<rect x="86" y="98" width="230" height="66" rx="22" fill="${c.main}"/>` +
      `<rect x="${120 + stripe}" y="98" width="14" height="66" fill="${c.light}"/>` +
      `<rect x="${150 + stripe}" y="98" width="8" height="66" fill="${c.light}"/>` +
      `<rect x="${110 + stripe}" y="164" width="12" height="66" fill="#fffdf7" opacity=".6"/>` +
      `<rect x="${160 + stripe}" y="230" width="14" height="66" fill="${c.light}" opacity=".7"/>`
    );
  },
};

/** A fallback for categories without a dedicated drawing: a simple gift box. */
const fallback: Drawing = (c) =>
  `<rect x="100" y="140" width="200" height="160" rx="12" fill="${c.main}"/>` +
  `<rect x="90" y="110" width="220" height="44" rx="10" fill="${c.dark}"/>` +
  `<rect x="188" y="110" width="24" height="190" fill="${c.accent}"/>`;

function svgFor(p: SeedProduct): string {
  const c = palette(p);
  const v = hash(`${p.slug}#v`) % 997;
  const draw = drawings[p.categorySlug] ?? fallback;
  const name = escapeXml(p.name);
  const fontSize = Math.min(22, Math.floor(620 / Math.max(p.name.length, 1)));
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 400 400" width="400" height="400" role="img" aria-labelledby="t-${p.slug}">` +
    `<title id="t-${p.slug}">${name}</title>` +
    `<rect width="400" height="400" fill="${c.bg}"/>` +
    draw(c, v) +
    `<text x="200" y="362" text-anchor="middle" font-family="system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif" font-size="${fontSize}" font-weight="600" fill="#33302e">${name}</text>` +
    `</svg>\n`
  );
}

const known = new Set(seedCategories.map((c) => c.slug));
mkdirSync(outDir, { recursive: true });
let largest = 0;
for (const p of seedProducts) {
  if (!known.has(p.categorySlug)) throw new Error(`${p.sku}: unknown category ${p.categorySlug}`);
  const svg = svgFor(p);
  largest = Math.max(largest, Buffer.byteLength(svg));
  writeFileSync(join(outDir, `${p.slug}.svg`), svg);
}
console.log(`wrote ${seedProducts.length} SVGs to ${outDir} (largest ${largest} bytes)`);
