// Product pictures as inline SVG, drawn from each product's shape and two colours, so the shop
// needs no image files and no third-party hosting.
window.productArt = (function () {
  var shapes = {
    mug: function (a, b) {
      return '<path d="M62 70h64v62a18 18 0 0 1-18 18H80a18 18 0 0 1-18-18z" fill="' + a + '"/>' +
        '<path d="M126 84h10a16 16 0 0 1 0 32h-10" fill="none" stroke="' + a + '" stroke-width="10"/>' +
        '<g fill="' + b + '"><circle cx="78" cy="92" r="2"/><circle cx="98" cy="110" r="2"/><circle cx="112" cy="86" r="2"/><circle cx="86" cy="126" r="2"/><circle cx="108" cy="134" r="2"/></g>' +
        '<path d="M84 58c-6-8 6-12 0-20M100 58c-6-8 6-12 0-20" stroke="' + b + '" stroke-width="3" fill="none" stroke-linecap="round" opacity=".5"/>';
    },
    bowl: function (a, b) {
      return '<path d="M44 92h112a56 50 0 0 1-112 0z" fill="' + a + '"/>' +
        '<ellipse cx="100" cy="92" rx="56" ry="12" fill="' + b + '"/>' +
        '<rect x="82" y="138" width="36" height="8" rx="3" fill="' + a + '"/>';
    },
    vase: function (a, b) {
      return '<path d="M90 50h20v18c0 10 22 22 22 50s-14 36-32 36-32-8-32-36 22-40 22-50z" fill="' + a + '"/>' +
        '<path d="M100 50C98 30 112 22 120 18" stroke="#4f7d45" stroke-width="3" fill="none"/>' +
        '<circle cx="121" cy="17" r="7" fill="' + b + '"/><path d="M80 120h40" stroke="' + b + '" stroke-width="4"/>';
    },
    teapot: function (a, b) {
      return '<ellipse cx="100" cy="112" rx="44" ry="36" fill="' + a + '"/>' +
        '<path d="M56 104 30 84" stroke="' + a + '" stroke-width="10" stroke-linecap="round"/>' +
        '<path d="M142 96a18 18 0 0 1 0 34" stroke="' + a + '" stroke-width="9" fill="none"/>' +
        '<ellipse cx="100" cy="78" rx="26" ry="8" fill="' + b + '"/><circle cx="100" cy="68" r="6" fill="' + a + '"/>';
    },
    monstera: function (a, b) {
      return '<path d="M100 120C60 110 46 70 70 44c20 8 30 30 30 76z" fill="' + a + '"/>' +
        '<path d="M100 120c40-10 54-50 30-76-20 8-30 30-30 76z" fill="' + a + '" opacity=".85"/>' +
        '<path d="M70 60l14 14M62 80l18 8M130 60l-14 14M138 80l-18 8" stroke="#f7f3ea" stroke-width="4"/>' +
        '<path d="M72 118h56l-8 38H80z" fill="' + b + '"/>';
    },
    snake: function (a, b) {
      return '<path d="M84 120c-6-30-4-60 4-80 8 20 8 50 4 80zM100 120c-2-36 2-70 10-88 6 24 4 60-2 88zM114 120c2-24 8-44 18-56 0 20-6 40-12 56z" fill="' + a + '"/>' +
        '<path d="M92 60h4M104 50h4M104 80h4M90 90h4" stroke="#cfe0a8" stroke-width="3"/>' +
        '<path d="M70 118h60l-6 38H76z" fill="' + b + '" stroke="#cbbfae" stroke-width="2"/>';
    },
    pilea: function (a, b) {
      var leaves = [[70, 70], [100, 56], [130, 72], [82, 92], [118, 94]];
      return leaves.map(function (p) {
        return '<path d="M100 124L' + p[0] + ' ' + (p[1] + 10) + '" stroke="#5b8a3c" stroke-width="2"/>' +
          '<circle cx="' + p[0] + '" cy="' + p[1] + '" r="15" fill="' + a + '"/>';
      }).join('') + '<path d="M74 120h52l-6 36H80z" fill="' + b + '"/>';
    },
    tree: function (a, b) {
      return '<rect x="96" y="88" width="8" height="40" fill="#7a5c3e"/>' +
        '<ellipse cx="100" cy="70" rx="42" ry="32" fill="' + a + '"/>' +
        '<g fill="#4e5a2e"><circle cx="80" cy="66" r="3"/><circle cx="112" cy="58" r="3"/><circle cx="118" cy="80" r="3"/></g>' +
        '<path d="M70 126h60l-8 32H78z" fill="' + b + '"/>';
    },
    notebook: function (a, b) {
      return '<rect x="60" y="40" width="84" height="116" rx="6" fill="' + a + '"/>' +
        '<rect x="60" y="40" width="12" height="116" fill="#000" opacity=".15"/>' +
        '<rect x="84" y="64" width="46" height="20" rx="2" fill="' + b + '"/>' +
        '<path d="M132 40v40l6-6 6 6V40" fill="#2b2b2b" opacity=".7"/>';
    },
    pen: function (a, b) {
      return '<g transform="rotate(-35 100 100)"><rect x="92" y="36" width="16" height="112" rx="6" fill="' + a + '"/>' +
        '<path d="M92 148h16l-8 20z" fill="' + b + '"/><rect x="104" y="44" width="4" height="40" rx="2" fill="' + b + '"/>' +
        '<rect x="92" y="60" width="16" height="4" fill="#fff" opacity=".4"/></g>';
    },
    planner: function (a, b) {
      var lines = '';
      for (var y = 70; y < 146; y += 12) lines += '<path d="M70 ' + y + 'h64" stroke="' + a + '" stroke-width="2" opacity=".4"/>';
      return '<rect x="58" y="42" width="90" height="116" rx="6" fill="' + b + '" stroke="' + a + '" stroke-width="4"/>' +
        '<rect x="58" y="42" width="90" height="20" rx="6" fill="' + a + '"/>' + lines +
        '<g fill="' + a + '"><circle cx="76" cy="42" r="4"/><circle cx="100" cy="42" r="4"/><circle cx="124" cy="42" r="4"/></g>';
    },
    letter: function (a, b) {
      return '<rect x="46" y="64" width="108" height="72" rx="4" fill="' + b + '" stroke="' + a + '" stroke-width="3"/>' +
        '<path d="M46 66l54 40 54-40" fill="none" stroke="' + a + '" stroke-width="3"/>' +
        '<circle cx="100" cy="108" r="12" fill="#a33b3b"/><path d="M95 108h10M100 103v10" stroke="#f3d0c8" stroke-width="2"/>';
    },
    jar: function (a, b) {
      return '<rect x="64" y="62" width="72" height="92" rx="12" fill="' + a + '"/>' +
        '<rect x="64" y="90" width="72" height="38" fill="' + b + '"/>' +
        '<path d="M100 62V50" stroke="#2b2b2b" stroke-width="3"/>' +
        '<path d="M100 48c-7-9 0-18 0-22 0 4 7 13 0 22z" fill="#f2a93b"/>' +
        '<path d="M80 104h40M86 114h28" stroke="' + a + '" stroke-width="3"/>';
    },
    taper: function (a, b) {
      var one = function (x) {
        return '<rect x="' + x + '" y="52" width="14" height="100" rx="4" fill="' + a + '"/>' +
          '<path d="M' + (x + 7) + ' 52v-8" stroke="#2b2b2b" stroke-width="2"/>' +
          '<path d="M' + (x + 7) + ' 42c-6-8 0-16 0-20 0 4 6 12 0 20z" fill="#f2a93b"/>';
      };
      return one(78) + one(108) + '<rect x="66" y="150" width="68" height="8" rx="4" fill="' + b + '"/>';
    },
    tin: function (a, b) {
      return [62, 100, 138].map(function (x, i) {
        return '<ellipse cx="' + x + '" cy="' + (112 + (i % 2) * 10) + '" rx="18" ry="24" fill="' + a + '"/>' +
          '<ellipse cx="' + x + '" cy="' + (106 + (i % 2) * 10) + '" rx="13" ry="17" fill="' + b + '"/>';
      }).join('');
    },
  };
  return function (product) {
    var c = product.colors;
    return '<svg viewBox="0 0 200 200" role="img" aria-label="' + product.name + '" xmlns="http://www.w3.org/2000/svg">' +
      '<rect width="200" height="200" fill="' + c[1] + '" opacity=".35"/>' +
      '<ellipse cx="100" cy="160" rx="62" ry="8" fill="#000" opacity=".07"/>' +
      shapes[product.shape](c[0], c[1]) + '</svg>';
  };
})();
