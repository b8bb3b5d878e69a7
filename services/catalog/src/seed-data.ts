/**
 * Demo catalog seed data for Bazaar.
 *
 * Everything here is fictional demo content: 6 categories and 72 products
 * (12 per category). Prices are in minor units (US cents). Product images are
 * not photos: they are simple SVG illustrations generated locally by
 * `bun scripts/make-product-images.ts` into `bff/web/public/images/products/`,
 * one file per product named `<slug>.svg`.
 *
 * Some words (ceramic, cast iron, wool, merino, linen, bamboo, walnut, canvas,
 * brass, insulated, tea...) deliberately appear in several categories so that
 * full-text search returns interesting cross-category results.
 */

/** A category of the demo catalog. */
export interface SeedCategory {
  slug: string;
  name: string;
  description: string;
}

/** A product of the demo catalog; prices are in minor units (cents). */
export interface SeedProduct {
  sku: string;
  slug: string;
  name: string;
  description: string;
  categorySlug: string;
  priceMinor: number;
  currency: "USD";
  imageUrl: string;
}

export const seedCategories: SeedCategory[] = [
  {
    slug: "kitchen",
    name: "Kitchen",
    description: "Cookware, prep tools and storage built for everyday cooking.",
  },
  {
    slug: "coffee-tea",
    name: "Coffee & Tea",
    description: "Brewers, grinders, cups and fresh beans and leaves for a better morning cup.",
  },
  {
    slug: "audio",
    name: "Audio",
    description: "Headphones, speakers, turntables and accessories for listening at home and on the go.",
  },
  {
    slug: "outdoor",
    name: "Outdoor",
    description: "Camping, hiking and trail gear that packs light and lasts for seasons.",
  },
  {
    slug: "desk-stationery",
    name: "Desk & Stationery",
    description: "Notebooks, pens and desk accessories for a tidy, pleasant workspace.",
  },
  {
    slug: "home-textiles",
    name: "Home Textiles",
    description: "Bedding, throws, towels and soft furnishings in natural fibres.",
  },
];

/** Kebab-case slug derived from a product name. */
function slugify(name: string): string {
  return name
    .toLowerCase()
    .replace(/&/g, " and ")
    .replace(/['’]/g, "")
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
}

function product(sku: string, name: string, categorySlug: string, priceMinor: number, description: string): SeedProduct {
  const slug = slugify(name);
  return {
    sku,
    slug,
    name,
    description,
    categorySlug,
    priceMinor,
    currency: "USD",
    imageUrl: `/images/products/${slug}.svg`,
  };
}

export const seedProducts: SeedProduct[] = [
  // ---------------------------------------------------------------- kitchen
  product(
    "KIT-0001",
    "Cast Iron Skillet 10-Inch",
    "kitchen",
    3495,
    "Pre-seasoned cast iron skillet, 10 inches across, with a helper handle and twin pour spouts. Moves from stovetop to oven to campfire and only gets better with use.",
  ),
  product(
    "KIT-0002",
    "Ceramic Nonstick Sauté Pan",
    "kitchen",
    5900,
    "A 28 cm aluminium sauté pan with a PFAS-free ceramic coating and a tempered glass lid. Straight 6 cm sides make it ideal for braises and shallow frying.",
  ),
  product(
    "KIT-0003",
    "Bamboo Cutting Board Set",
    "kitchen",
    2750,
    "Three nesting bamboo boards in small, medium and large, each with a juice groove. Knife-friendly, lightweight and easy to oil.",
  ),
  product(
    "KIT-0004",
    "Carbon Steel Wok",
    "kitchen",
    4200,
    "A 14-inch flat-bottomed carbon steel wok that works on gas, electric and induction. Comes with a wooden handle and a helper grip for tossing.",
  ),
  product(
    "KIT-0005",
    "Stoneware Mixing Bowl Trio",
    "kitchen",
    4800,
    "Nesting 1, 2 and 3 quart stoneware bowls with a speckled glaze and a pouring lip. Dishwasher, microwave and oven safe.",
  ),
  product(
    "KIT-0006",
    "Olive Wood Spoon Set",
    "kitchen",
    2295,
    "Four hand-carved olive wood utensils: a spoon, a slotted spoon, a spatula and a corner scraper. Dense grain that resists stains and odours.",
  ),
  product(
    "KIT-0007",
    "Enameled Dutch Oven 5.5 Qt",
    "kitchen",
    18900,
    "Enameled cast iron Dutch oven holding 5.5 quarts, with a self-basting lid and a light interior that makes browning easy to watch. Oven safe to 260 °C.",
  ),
  product(
    "KIT-0008",
    "Stainless Steel Measuring Cups",
    "kitchen",
    1849,
    "A set of six brushed stainless steel measuring cups from 1/8 to 1 cup, with engraved markings that never wear off. Nest together on a ring.",
  ),
  product(
    "KIT-0009",
    "Waxed Canvas Chef Apron",
    "kitchen",
    3800,
    "A heavy waxed cotton canvas apron with leather straps and two deep front pockets. Wipes clean and shrugs off splatters.",
  ),
  product(
    "KIT-0010",
    "Damascus Chef's Knife 8-Inch",
    "kitchen",
    12900,
    "An 8-inch chef's knife with a 67-layer Damascus steel blade and a stabilised walnut handle. Hand-sharpened to a 15° edge.",
  ),
  product(
    "KIT-0011",
    "Glass Storage Jar Set",
    "kitchen",
    3199,
    "Five borosilicate glass jars with airtight bamboo lids, from 300 ml to 1.5 L. Perfect for flour, pasta, beans and loose leaf tea.",
  ),
  product(
    "KIT-0012",
    "Marble Mortar and Pestle",
    "kitchen",
    2995,
    "A solid white marble mortar and pestle with an unpolished grinding bowl, 12 cm wide. Crushes spices, garlic and herbs for pastes and pesto.",
  ),

  // ------------------------------------------------------------- coffee-tea
  product(
    "COF-0001",
    "Walnut Pour-Over Stand",
    "coffee-tea",
    6400,
    "A solid walnut stand that holds a pour-over dripper at the perfect height above a mug or scale. Finished with food-safe oil and a brass drip ring.",
  ),
  product(
    "COF-0002",
    "Ceramic Pour-Over Dripper",
    "coffee-tea",
    2400,
    "A size 02 ceramic cone dripper with spiral ribs for an even extraction. Brews one or two cups and fits standard cone paper filters.",
  ),
  product(
    "COF-0003",
    "Gooseneck Electric Kettle",
    "coffee-tea",
    8995,
    "A 0.9 L stainless steel gooseneck kettle with precise temperature control from 40 to 100 °C and a one-hour keep-warm mode. The slim spout gives a slow, steady pour.",
  ),
  product(
    "COF-0004",
    "Conical Burr Hand Grinder",
    "coffee-tea",
    7450,
    "A hand coffee grinder with 38 mm stainless steel conical burrs and 40 click settings, from espresso fine to French press coarse. Holds 25 g of beans.",
  ),
  product(
    "COF-0005",
    "Double-Wall French Press",
    "coffee-tea",
    4400,
    "A 1 L double-wall stainless steel French press that keeps coffee hot for an hour. The four-layer mesh filter keeps grounds out of the cup.",
  ),
  product(
    "COF-0006",
    "Stoneware Espresso Cup Set",
    "coffee-tea",
    2800,
    "Four 90 ml stoneware espresso cups with matching saucers in a reactive glaze. Thick walls hold heat for a proper crema.",
  ),
  product(
    "COF-0007",
    "Cast Iron Tetsubin Teapot",
    "coffee-tea",
    6800,
    "A 0.8 L Japanese-style cast iron teapot with an enamelled interior and a removable stainless steel infuser. Keeps tea warm long after brewing.",
  ),
  product(
    "COF-0008",
    "Bamboo Matcha Whisk Set",
    "coffee-tea",
    2650,
    "A 100-prong bamboo chasen whisk with a ceramic whisk holder and a bamboo scoop. Everything you need to whisk a frothy bowl of matcha.",
  ),
  product(
    "COF-0009",
    "Unbleached Cone Paper Filters",
    "coffee-tea",
    599,
    "A pack of 100 unbleached size 02 cone paper filters. Rinse before brewing for a clean, bright cup.",
  ),
  product(
    "COF-0010",
    "Ethiopia Yirgacheffe Whole Beans",
    "coffee-tea",
    1875,
    "340 g of light-roasted, washed Ethiopia Yirgacheffe whole bean coffee with notes of jasmine, lemon and black tea. Roasted in small batches.",
  ),
  product(
    "COF-0011",
    "Organic Sencha Green Tea",
    "coffee-tea",
    1425,
    "100 g of first-flush organic sencha loose leaf tea from Shizuoka, packed in a resealable tin. Grassy, sweet and best brewed at 75 °C.",
  ),
  product(
    "COF-0012",
    "Insulated Travel Tumbler",
    "coffee-tea",
    2900,
    "A 16 oz vacuum-insulated stainless steel tumbler with a leak-proof slide lid. Keeps coffee or tea hot for 6 hours and fits most car cup holders.",
  ),

  // ------------------------------------------------------------------ audio
  product(
    "AUD-0001",
    "Studio Over-Ear Wireless Headphones",
    "audio",
    24900,
    "Closed-back over-ear Bluetooth headphones with 40 mm drivers, active noise cancelling and 30 hours of battery. Memory foam cushions wrapped in soft protein leather.",
  ),
  product(
    "AUD-0002",
    "Noise-Cancelling Wireless Earbuds",
    "audio",
    17999,
    "True wireless earbuds with hybrid noise cancelling, a transparency mode and an IPX4 splash rating. Up to 24 hours of listening with the charging case.",
  ),
  product(
    "AUD-0003",
    "Walnut Bookshelf Speakers",
    "audio",
    37900,
    "A pair of powered two-way bookshelf speakers in real walnut veneer with 5.25-inch woofers. Connect by Bluetooth, optical or analogue RCA.",
  ),
  product(
    "AUD-0004",
    "Trailhead Waterproof Bluetooth Speaker",
    "audio",
    6995,
    "A rugged IP67 waterproof Bluetooth speaker with a carabiner strap, built for trips outdoors. 12 hours of playback and it floats.",
  ),
  product(
    "AUD-0005",
    "Belt-Drive Turntable",
    "audio",
    28900,
    "A two-speed belt-drive turntable with an aluminium platter, a pre-mounted moving magnet cartridge and a switchable phono preamp. The plinth is finished in walnut.",
  ),
  product(
    "AUD-0006",
    "USB Condenser Microphone",
    "audio",
    11900,
    "A cardioid USB condenser microphone with a zero-latency headphone jack and a gain knob. Includes a desk stand and a pop filter for podcasts and calls.",
  ),
  product(
    "AUD-0007",
    "Bamboo Headphone Stand",
    "audio",
    3450,
    "A bamboo headphone stand with a curved hanger and a cable tidy in the base. Keeps headband padding in shape between listens.",
  ),
  product(
    "AUD-0008",
    "Braided 3.5 mm Audio Cable",
    "audio",
    1299,
    "A 1.2 m braided nylon 3.5 mm to 3.5 mm audio cable with gold-plated plugs and strain relief. Tangle-resistant and built for daily use.",
  ),
  product(
    "AUD-0009",
    "Wool Felt Headphone Sleeve",
    "audio",
    2400,
    "A padded sleeve in thick merino wool felt that protects over-ear headphones in a bag. Closes with a leather strap and a snap.",
  ),
  product(
    "AUD-0010",
    "Compact Desktop DAC & Headphone Amp",
    "audio",
    14900,
    "A USB-C DAC and headphone amplifier supporting 32-bit/384 kHz audio, with 4.4 mm balanced and 6.35 mm outputs. Small enough to sit beside a keyboard.",
  ),
  product(
    "AUD-0011",
    "Vinyl Record Cleaning Kit",
    "audio",
    2795,
    "A carbon fibre brush, a velvet cleaning pad, 100 ml of alcohol-free fluid and a stylus brush. Removes dust and static before every spin.",
  ),
  product(
    "AUD-0012",
    "Linen-Grille Smart Speaker",
    "audio",
    9900,
    "A compact Wi-Fi smart speaker with a woven linen grille and room-filling 360° sound. Supports multi-room playback and voice assistants.",
  ),

  // ---------------------------------------------------------------- outdoor
  product(
    "OUT-0001",
    "Two-Person Backpacking Tent",
    "outdoor",
    27900,
    "A freestanding two-person, three-season tent weighing 1.6 kg, with two doors and two vestibules. Aluminium poles and a 20D ripstop fly.",
  ),
  product(
    "OUT-0002",
    "Merino Wool Hiking Socks",
    "outdoor",
    2195,
    "Mid-weight merino wool crew socks with a cushioned sole and a seamless toe. Naturally odour-resistant for multi-day hikes.",
  ),
  product(
    "OUT-0003",
    "Insulated Steel Water Bottle",
    "outdoor",
    3200,
    "A 750 ml double-wall insulated stainless steel bottle that keeps drinks cold for 24 hours. Powder-coated for grip, with a leak-proof loop cap.",
  ),
  product(
    "OUT-0004",
    "Down Sleeping Bag 30°F",
    "outdoor",
    21900,
    "A mummy sleeping bag filled with 650-fill responsibly sourced down, rated to 30 °F (-1 °C). Packs down to the size of a loaf of bread.",
  ),
  product(
    "OUT-0005",
    "Titanium Camp Mug",
    "outdoor",
    2750,
    "A 450 ml titanium mug weighing just 70 g, with folding handles and volume markings. Goes straight onto a camp stove for coffee or tea.",
  ),
  product(
    "OUT-0006",
    "Folding Camp Chair",
    "outdoor",
    6499,
    "A packable camp chair with a shock-corded aluminium frame that holds up to 145 kg. Sets up in a minute and folds into its own stuff sack.",
  ),
  product(
    "OUT-0007",
    "Waxed Canvas Daypack",
    "outdoor",
    9800,
    "A 22 L daypack in water-resistant waxed canvas with leather trim and a padded laptop sleeve. Equally at home on the trail or the commute.",
  ),
  product(
    "OUT-0008",
    "Rechargeable LED Headlamp",
    "outdoor",
    3995,
    "A 400-lumen USB-C rechargeable headlamp with red night mode and a tilting beam. Up to 40 hours on low.",
  ),
  product(
    "OUT-0009",
    "Carbon Trekking Poles",
    "outdoor",
    11900,
    "A pair of three-section carbon fibre trekking poles weighing 240 g each, with cork grips and quick flick locks. Includes mud and snow baskets.",
  ),
  product(
    "OUT-0010",
    "Bamboo Camp Utensil Set",
    "outdoor",
    1450,
    "A bamboo fork, knife, spoon and chopsticks in a roll-up cotton canvas pouch. Reusable and light enough for any pack.",
  ),
  product(
    "OUT-0011",
    "Wool Camp Blanket",
    "outdoor",
    8900,
    "A heavy 80% wool camp blanket, 150 × 200 cm, with a classic stripe. Warm even when damp, for cabins, campfires and car trips.",
  ),
  product(
    "OUT-0012",
    "Compact Water Filter",
    "outdoor",
    4495,
    "A 0.1 micron hollow-fibre squeeze filter that removes bacteria and protozoa. Screws onto standard bottles and filters up to 380,000 litres.",
  ),

  // -------------------------------------------------------- desk-stationery
  product(
    "DSK-0001",
    "Dot Grid Notebook A5",
    "desk-stationery",
    1600,
    "A lay-flat A5 notebook with 192 numbered pages of 100 gsm dot grid paper and a linen hardcover. Includes two ribbon markers and a back pocket.",
  ),
  product(
    "DSK-0002",
    "Brass Fountain Pen",
    "desk-stationery",
    5800,
    "A solid brass fountain pen with a fine steel nib that develops a warm patina over time. Takes standard international cartridges or a converter.",
  ),
  product(
    "DSK-0003",
    "Walnut Desk Organizer",
    "desk-stationery",
    4500,
    "A solid walnut organizer with slots for pens, a phone, sticky notes and business cards. Felt-lined underneath to protect your desk.",
  ),
  product(
    "DSK-0004",
    "Bamboo Monitor Riser",
    "desk-stationery",
    4999,
    "A bamboo monitor stand that lifts your screen 10 cm to eye level, with space underneath for a keyboard. Supports up to 20 kg.",
  ),
  product(
    "DSK-0005",
    "Fine Gel Pen Six-Pack",
    "desk-stationery",
    949,
    "Six 0.5 mm quick-drying gel pens in black, blue, red, green, purple and teal. Smooth, smudge-free lines for notes and journaling.",
  ),
  product(
    "DSK-0006",
    "Wool Felt Desk Mat",
    "desk-stationery",
    3600,
    "A 90 × 40 cm desk mat in 4 mm pressed merino wool felt. Soft under the wrists and quiet under the keyboard and mouse.",
  ),
  product(
    "DSK-0007",
    "Ceramic Pencil Cup",
    "desk-stationery",
    1400,
    "A hand-thrown ceramic pencil cup with a matte speckled glaze, 10 cm tall. Holds pens, pencils and a pair of scissors.",
  ),
  product(
    "DSK-0008",
    "Leather Notebook Cover",
    "desk-stationery",
    4250,
    "A vegetable-tanned leather cover for A5 notebooks with a pen loop and card slots. Ages beautifully with use.",
  ),
  product(
    "DSK-0009",
    "Linen Bound Sketchbook",
    "desk-stationery",
    2200,
    "A square 20 × 20 cm sketchbook with 140 gsm acid-free paper and a linen-bound cover. Takes pencil, ink and light washes.",
  ),
  product(
    "DSK-0010",
    "Brass Task Lamp",
    "desk-stationery",
    12900,
    "An adjustable brass desk lamp with a weighted base and a dimmable warm LED. Swivels and tilts to put light exactly where you need it.",
  ),
  product(
    "DSK-0011",
    "Recycled Sticky Note Pads",
    "desk-stationery",
    499,
    "Six pads of 100% recycled 76 × 76 mm sticky notes in soft pastel colours. Repositionable and easy to peel.",
  ),
  product(
    "DSK-0012",
    "Deep Blue Fountain Pen Ink",
    "desk-stationery",
    1750,
    "A 50 ml glass bottle of deep blue fountain pen ink with gentle shading. Water-based, quick-drying and easy to clean.",
  ),

  // ---------------------------------------------------------- home-textiles
  product(
    "TEX-0001",
    "Merino Wool Throw Blanket",
    "home-textiles",
    13900,
    "A lightweight 130 × 170 cm throw woven from soft merino wool with fringed edges. Breathable enough for year-round use on the sofa.",
  ),
  product(
    "TEX-0002",
    "Stonewashed Linen Duvet Cover",
    "home-textiles",
    18900,
    "A queen-size duvet cover in 100% European flax linen, stonewashed for a soft, lived-in feel. Closes with coconut shell buttons.",
  ),
  product(
    "TEX-0003",
    "Waffle Knit Cotton Bath Towel",
    "home-textiles",
    2800,
    "A 70 × 140 cm bath towel in a deep waffle weave of long-staple cotton. Quick-drying and gets softer with every wash.",
  ),
  product(
    "TEX-0004",
    "Chunky Knit Pillow Cover",
    "home-textiles",
    3950,
    "A 50 × 50 cm pillow cover hand-knitted from chunky wool blend yarn, with a hidden zip. Adds texture to a sofa or reading chair.",
  ),
  product(
    "TEX-0005",
    "Organic Cotton Percale Sheet Set",
    "home-textiles",
    14900,
    "A crisp, cool 300 thread count organic cotton percale sheet set with a fitted sheet, flat sheet and two pillowcases. Queen size, GOTS certified.",
  ),
  product(
    "TEX-0006",
    "Linen Tea Towel Set",
    "home-textiles",
    2400,
    "Three absorbent linen tea towels, 50 × 70 cm, with a hanging loop. Lint-free for drying glasses and ceramic dishes.",
  ),
  product(
    "TEX-0007",
    "Bamboo Lyocell Pillowcases",
    "home-textiles",
    4400,
    "A pair of silky bamboo lyocell pillowcases with an envelope closure. Cool to the touch and gentle on hair and skin.",
  ),
  product(
    "TEX-0008",
    "Hand-Woven Jute Rug",
    "home-textiles",
    22900,
    "A 150 × 240 cm flatweave rug hand-woven from natural jute with a cotton border. Durable enough for hallways and living rooms.",
  ),
  product(
    "TEX-0009",
    "Velvet Blackout Curtain Panel",
    "home-textiles",
    6400,
    "A 140 × 260 cm cotton velvet curtain panel with a blackout lining that blocks light and draughts. Hangs from back tabs or a rod pocket.",
  ),
  product(
    "TEX-0010",
    "Quilted Cotton Coverlet",
    "home-textiles",
    15900,
    "A lightweight queen coverlet with a stitched diamond quilt pattern and recycled polyester fill. Layers over a duvet in winter or on its own in summer.",
  ),
  product(
    "TEX-0011",
    "Turkish Cotton Bathrobe",
    "home-textiles",
    7995,
    "A mid-length shawl-collar bathrobe in plush Turkish cotton terry with two pockets and a belt. Unisex sizes S to XL.",
  ),
  product(
    "TEX-0012",
    "Cotton Canvas Storage Basket",
    "home-textiles",
    2695,
    "A 35 cm round storage basket in heavy cotton canvas with leather handles. Holds throws, towels or toys and folds flat when empty.",
  ),
];
