// Express app behind the gate in tests/integration/differential.rs.
//
// Run: node express_app.js PORT (with NODE_PATH holding express, cookie-parser and vhost).
// Serves 127.0.0.1:PORT. Routes use Express's default router (case-insensitive, trailing slash
// optional); cookies come from cookie-parser; the admin virtual host is the vhost middleware.
// Every handler answers JSON naming itself (also in `X-Handler`) and what the app saw.
'use strict';

const express = require('express');
const cookieParser = require('cookie-parser');
const vhost = require('vhost');

/// Every raw value of the header `name`, as Node read it off the wire.
function raw(req, name) {
  const out = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i].toLowerCase() === name) out.push(req.rawHeaders[i + 1]);
  }
  return out;
}

/// A handler answering as `handler`, with what Express made of the request.
function seen(handler) {
  return (req, res) => {
    res.set('X-Handler', handler).json({
      handler,
      method: req.method,
      path: req.path,
      host: req.hostname,
      owner: (req.params && req.params.owner) || null,
      cookies: Object.entries(req.cookies || {}),
      cookie_headers: raw(req, 'cookie'),
      authorization: raw(req, 'authorization'),
      user: req.get('X-Forwarded-User') || null,
      roles: req.get('X-Forwarded-Roles') || null,
      groups: req.get('X-Forwarded-Groups') || null,
    });
  };
}

const app = express();
app.disable('x-powered-by');
app.use(cookieParser());
app.use(vhost('admin.example.com', seen('admin_vhost')));
app.all(['/public', '/public/*rest'], seen('public'));
app.all(['/admin', '/admin/*rest'], seen('admin'));
app.all(['/wiki/Special\\:Admin', '/wiki/Special\\:Admin/*rest'], seen('wiki_admin'));
// Clients send the escaped form; the literal one is what the source says.
const cafe = ['/café', encodeURI('/café')];
app.all([...cafe, ...cafe.map((p) => `${p}/*rest`)], seen('cafe_admin'));
app.all(['/c\\+\\+', '/c\\+\\+/*rest'], seen('plus_admin'));
app
  .route('/:owner/notes')
  .get(seen('owner_read'))
  .post(seen('owner_write'))
  .put(seen('owner_write'))
  .patch(seen('owner_write'))
  .delete(seen('owner_write'));
app.all(['/', '/*rest'], seen('catchall'));

app.listen(Number(process.argv[2]), '127.0.0.1');
