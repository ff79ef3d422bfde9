// The anonymous id cookie lives on the top-most domain the browser accepts (example.com rather
// than shop.example.com), so every subdomain of a site sees the same visitor. Browsers refuse
// public suffixes (com, co.uk) unless the suffix is the host itself (localhost), so writing from
// the shortest name up, the first that sticks is the one.
export const cookieJar = (doc) => {
  const get = () => doc.cookie.match(/(^|; )bond_id=([^;]*)/)?.[2];
  const write = (v, domain) =>
    (doc.cookie = `bond_id=${v};path=/;SameSite=Lax;max-age=${v ? 31536e3 : 0};domain=${domain}`);
  return {
    load: get,
    // An empty value deletes the cookie on every name it could have been set on.
    save(v) {
      const parts = doc.location.hostname.split('.');
      for (let i = parts.length; i--; ) if (write(v, parts.slice(i).join('.')) && v && get() == v) return;
    },
  };
};
