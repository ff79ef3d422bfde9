// The catalogue. Every page reads it; the art for each product is drawn from `shape` and `colors`.
window.SHOP = {
  name: 'Fern & Kiln',
  currency: 'EUR',
  categories: [
    { id: 'ceramics', name: 'Ceramics', blurb: 'Wheel-thrown mugs, bowls and vases, glazed in small batches.' },
    { id: 'plants', name: 'Plants', blurb: 'Easy-going greenery, potted and ready for a sunny sill.' },
    { id: 'stationery', name: 'Stationery', blurb: 'Notebooks and pens for lists, letters and long plans.' },
    { id: 'candles', name: 'Candles', blurb: 'Soy wax, cotton wicks, poured by hand in our studio.' },
  ],
  products: [
    { id: 'speckled-mug', name: 'Speckled Mug', category: 'ceramics', price: 24, shape: 'mug', colors: ['#e9dfd0', '#7a6a58'], description: 'A generous 350 ml mug in oatmeal speckle glaze, with a thumb-rest handle.' },
    { id: 'indigo-bowl', name: 'Indigo Bowl', category: 'ceramics', price: 32, shape: 'bowl', colors: ['#2f4a7a', '#c9d4ea'], description: 'A deep serving bowl dipped in indigo, pale at the rim where the glaze runs thin.' },
    { id: 'bud-vase', name: 'Bud Vase', category: 'ceramics', price: 28, shape: 'vase', colors: ['#c96f4a', '#f3d8c7'], description: 'A small terracotta vase for a single stem, unglazed on the outside.' },
    { id: 'moss-teapot', name: 'Moss Teapot', category: 'ceramics', price: 68, shape: 'teapot', colors: ['#6d8a55', '#dfe8d3'], description: 'A one-litre teapot in moss celadon with a stainless steel infuser.' },
    { id: 'monstera', name: 'Monstera Deliciosa', category: 'plants', price: 45, shape: 'monstera', colors: ['#2e7d4f', '#d9c2a6'], description: 'The classic split-leaf plant, 60 cm tall, in a 17 cm nursery pot.' },
    { id: 'snake-plant', name: 'Snake Plant', category: 'plants', price: 29, shape: 'snake', colors: ['#3f6e3a', '#e8e1d5'], description: 'Upright, architectural and nearly impossible to kill. Likes to be forgotten.' },
    { id: 'pilea', name: 'Pilea Peperomioides', category: 'plants', price: 22, shape: 'pilea', colors: ['#4f9a4a', '#f0c9a8'], description: 'The friendship plant: coin-shaped leaves and pups to pass on.' },
    { id: 'olive-tree', name: 'Olive Tree', category: 'plants', price: 89, shape: 'tree', colors: ['#8a9a5b', '#b9a48a'], description: 'A young olive tree, 90 cm, for the brightest corner of your home.' },
    { id: 'linen-notebook', name: 'Linen Notebook', category: 'stationery', price: 18, shape: 'notebook', colors: ['#b85c5c', '#f5efe6'], description: 'A5, 192 dotted pages of 100 gsm paper, bound in linen that lies flat.' },
    { id: 'brass-pen', name: 'Brass Pen', category: 'stationery', price: 36, shape: 'pen', colors: ['#c9a14a', '#2b2b2b'], description: 'A solid brass ballpoint that takes standard refills and ages beautifully.' },
    { id: 'weekly-planner', name: 'Weekly Planner', category: 'stationery', price: 21, shape: 'planner', colors: ['#5b7fa3', '#f5efe6'], description: 'Undated week-on-two-pages planner, so you can start any Monday.' },
    { id: 'letter-set', name: 'Letter Writing Set', category: 'stationery', price: 26, shape: 'letter', colors: ['#d8a7a0', '#fbf7f0'], description: 'Twenty sheets and envelopes of cotton paper, with a wax seal.' },
    { id: 'fig-candle', name: 'Fig & Cedar Candle', category: 'candles', price: 34, shape: 'jar', colors: ['#6b4f6e', '#f3ead8'], description: 'Ripe fig over cedarwood, 50 hours of burn time in a reusable glass.' },
    { id: 'sea-salt-candle', name: 'Sea Salt Candle', category: 'candles', price: 30, shape: 'jar', colors: ['#4f8fa3', '#eef4f4'], description: 'Sea salt and driftwood; the smell of the coast in October.' },
    { id: 'taper-pair', name: 'Beeswax Tapers (pair)', category: 'candles', price: 16, shape: 'taper', colors: ['#e0b44c', '#8a5a3b'], description: 'Two hand-dipped beeswax tapers that burn clean and slow.' },
    { id: 'travel-tin', name: 'Travel Tin Trio', category: 'candles', price: 27, shape: 'tin', colors: ['#a3a3a3', '#e7d7c1'], description: 'Three small tins: fig, sea salt and smoked vanilla.' },
  ],
};
