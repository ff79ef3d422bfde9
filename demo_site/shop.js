// The shop's own behaviour: cart, forms and page rendering. Everything Bond sees goes through
// the SDK's public calls (bond.track, bond.reset) or data-bond-event attributes; the SDK
// identifies visitors from the email field of submitted forms by itself.
(function () {
  var shop = window.SHOP;
  var byId = {};
  shop.products.forEach(function (p) { byId[p.id] = p; });
  var page = document.body.dataset.page;
  var params = new URLSearchParams(location.search);
  var $ = function (sel) { return document.querySelector(sel); };

  var store = {
    get: function (k, d) {
      try { return JSON.parse(localStorage.getItem(k)) || d; } catch (e) { return d; }
    },
    set: function (k, v) { localStorage.setItem(k, JSON.stringify(v)); },
    del: function (k) { localStorage.removeItem(k); },
  };
  var cart = function () { return store.get('shop_cart', []); };
  var customer = function () { return store.get('shop_customer', null); };
  var money = function (n) {
    return new Intl.NumberFormat('en-IE', { style: 'currency', currency: shop.currency }).format(n);
  };
  var esc = function (s) {
    return String(s).replace(/[&<>"']/g, function (c) { return '&#' + c.charCodeAt(0) + ';'; });
  };
  var cartLines = function () {
    return cart().map(function (l) { return { product: byId[l.id], qty: l.qty }; })
      .filter(function (l) { return l.product; });
  };
  var cartTotal = function () {
    return cartLines().reduce(function (s, l) { return s + l.product.price * l.qty; }, 0);
  };

  function header() {
    var who = customer();
    var count = cart().reduce(function (s, l) { return s + l.qty; }, 0);
    var cats = shop.categories.map(function (c) {
      return '<a href="catalogue.html?category=' + c.id + '">' + c.name + '</a>';
    }).join('');
    var account = who
      ? '<span class="hello">Hi, ' + esc(who.name || who.email) + '</span>' +
        '<a href="index.html" id="logout">Log out</a>'
      : '<a href="login.html">Log in</a><a href="signup.html" class="pill">Sign up</a>';
    $('#site-header').innerHTML =
      '<div class="bar"><a class="logo" href="index.html"><span class="leaf"></span>' + shop.name + '</a>' +
      '<nav class="cats"><a href="catalogue.html">All</a>' + cats + '</nav>' +
      '<nav class="account">' + account +
      '<a href="cart.html" class="cart-link">Cart <span id="cart-count">' + count + '</span></a></nav></div>';
    var out = $('#logout');
    if (out) out.addEventListener('click', function () {
      // The next person at this computer must not inherit this visitor's identity.
      bond.reset();
      store.del('shop_customer');
      store.del('shop_cart');
    });
  }

  function card(p) {
    return '<a class="card" href="product.html?id=' + p.id + '">' +
      '<div class="art">' + productArt(p) + '</div>' +
      '<div class="card-body"><span class="cat">' + categoryName(p.category) + '</span>' +
      '<h3>' + esc(p.name) + '</h3><span class="price">' + money(p.price) + '</span></div></a>';
  }
  function categoryName(id) {
    return shop.categories.filter(function (c) { return c.id == id; })[0].name;
  }

  var pages = {
    home: function () {
      $('#featured').innerHTML = ['speckled-mug', 'monstera', 'linen-notebook', 'fig-candle']
        .map(function (id) { return card(byId[id]); }).join('');
      $('#categories').innerHTML = shop.categories.map(function (c) {
        var first = shop.products.filter(function (p) { return p.category == c.id; })[0];
        return '<a class="category" href="catalogue.html?category=' + c.id + '">' +
          '<div class="art">' + productArt(first) + '</div><div><h3>' + c.name + '</h3><p>' + c.blurb + '</p></div></a>';
      }).join('');
    },
    catalogue: function () {
      var cat = params.get('category');
      var known = shop.categories.filter(function (c) { return c.id == cat; })[0];
      $('#catalogue-title').textContent = known ? known.name : 'Everything';
      $('#catalogue-blurb').textContent = known ? known.blurb : 'Every piece in the shop, made in small batches.';
      document.title = (known ? known.name : 'Shop') + ' · ' + shop.name;
      $('#products').innerHTML = shop.products
        .filter(function (p) { return !known || p.category == known.id; }).map(card).join('');
    },
    product: function () {
      var p = byId[params.get('id')];
      if (!p) {
        $('#product').innerHTML = '<p>That product is no longer in the shop. <a href="catalogue.html">See everything</a>.</p>';
        return;
      }
      document.title = p.name + ' · ' + shop.name;
      $('#product').innerHTML =
        '<div class="art big">' + productArt(p) + '</div><div class="detail">' +
        '<a class="cat" href="catalogue.html?category=' + p.category + '">' + categoryName(p.category) + '</a>' +
        '<h1>' + esc(p.name) + '</h1><p class="price big">' + money(p.price) + '</p>' +
        '<p>' + esc(p.description) + '</p>' +
        '<button id="add-to-cart" class="button" data-bond-event="Product Added"' +
        ' data-bond-prop-product_id="' + p.id + '" data-bond-prop-name="' + esc(p.name) + '"' +
        ' data-bond-prop-category="' + p.category + '" data-bond-prop-price="' + p.price + '"' +
        ' data-bond-prop-currency="' + shop.currency + '">Add to cart</button>' +
        '<p class="note">Free delivery over ' + money(60) + ' · 30-day returns</p></div>';
      $('#add-to-cart').addEventListener('click', function () {
        var lines = cart();
        var line = lines.filter(function (l) { return l.id == p.id; })[0];
        if (line) line.qty += 1;
        else lines.push({ id: p.id, qty: 1 });
        store.set('shop_cart', lines);
        header();
        toast(p.name + ' added to your cart');
      });
      bond.track('Product Viewed', {
        product_id: p.id, name: p.name, category: p.category, price: p.price, currency: shop.currency,
      });
    },
    cart: function () {
      var lines = cartLines();
      if (!lines.length) {
        $('#cart').innerHTML = '<p class="empty">Your cart is empty. <a href="catalogue.html">Find something lovely</a>.</p>';
        return;
      }
      var total = cartTotal();
      $('#cart').innerHTML = '<ul class="lines">' + lines.map(function (l) {
        return '<li><div class="art thumb">' + productArt(l.product) + '</div>' +
          '<a href="product.html?id=' + l.product.id + '">' + esc(l.product.name) + '</a>' +
          '<span class="qty">× ' + l.qty + '</span><span class="price">' + money(l.product.price * l.qty) + '</span></li>';
      }).join('') + '</ul><div class="total"><span>Total</span><strong>' + money(total) + '</strong></div>' +
        '<a id="checkout" class="button" href="checkout.html" data-bond-event="Checkout Started"' +
        ' data-bond-prop-value="' + total.toFixed(2) + '" data-bond-prop-currency="' + shop.currency + '">Checkout</a>';
    },
    checkout: function () {
      var lines = cartLines();
      if (!lines.length) {
        $('#checkout-main').innerHTML = '<p class="empty">Your cart is empty. <a href="catalogue.html">Back to the shop</a>.</p>';
        return;
      }
      var who = customer();
      if (who) $('#email').value = who.email;
      $('#summary').innerHTML = lines.map(function (l) {
        return '<li><span>' + esc(l.product.name) + ' × ' + l.qty + '</span><span>' + money(l.product.price * l.qty) + '</span></li>';
      }).join('') + '<li class="total"><span>Total</span><strong>' + money(cartTotal()) + '</strong></li>';
      $('#checkout-form').addEventListener('submit', function (e) {
        e.preventDefault();
        var order = {
          order_id: 'FK-' + Date.now().toString(36).toUpperCase(),
          value: cartTotal(),
          currency: shop.currency,
          products: lines.map(function (l) {
            return { product_id: l.product.id, name: l.product.name, price: l.product.price, quantity: l.qty };
          }),
        };
        bond.track('Order Completed', order);
        var email = $('#email').value.trim();
        // The name a signed-in customer signed up with stays their greeting: the checkout's
        // is a delivery name, often shorter ("Ada" for "Ada Lovelace").
        var known = who && who.email === email && who.name;
        store.set('shop_customer', { email: email, name: known || $('#name').value.trim() });
        store.set('shop_last_order', { id: order.order_id, value: order.value, email: email });
        store.del('shop_cart');
        // Straight to the confirmation, as real shops do: the SDK must deliver on the way out.
        location.assign('thanks.html');
      });
    },
    thanks: function () {
      var order = store.get('shop_last_order', null);
      if (order) {
        $('#order-id').textContent = order.id;
        $('#order-total').textContent = money(order.value);
        $('#order-email').textContent = order.email;
      }
    },
    account: function () {
      var form = $('#account-form');
      form.addEventListener('submit', function (e) {
        e.preventDefault();
        var email = $('#email').value.trim();
        var name = $('#name') ? $('#name').value.trim() : '';
        store.set('shop_customer', { email: email, name: name });
        location.assign('index.html');
      });
    },
  };

  function toast(text) {
    var t = $('#toast') || document.body.appendChild(document.createElement('div'));
    t.id = 'toast';
    t.textContent = text;
    t.className = 'show';
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { t.className = ''; }, 2500);
  }

  header();
  (pages[page] || function () {})();
  document.body.classList.add('ready');
})();
