"""Flask/Werkzeug app behind the gate in tests/integration/differential.rs.

Run: python flask_app.py PORT. Serves 127.0.0.1:PORT with Werkzeug's threaded server. Routes
are plain Flask routes; the admin virtual host is picked the way a hand-written Flask app picks
it (the Host header without its port, lower-cased). Every handler answers JSON naming itself
(also in `X-Handler`) and what the app saw.
"""

import sys

from flask import Flask, jsonify, request
from werkzeug.serving import run_simple

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
WRITES = ["POST", "PUT", "PATCH", "DELETE"]

app = Flask(__name__)


def seen(handler, owner=None):
    """The answer: the handler that ran and what Flask made of the request."""
    body = {
        "handler": handler,
        "method": request.method,
        "path": request.path,
        "host": request.host,
        "owner": owner,
        "cookies": [[k, v] for k, vs in request.cookies.lists() for v in vs],
        "cookie_headers": request.headers.getlist("Cookie"),
        "authorization": request.headers.getlist("Authorization"),
        "user": request.headers.get("X-Forwarded-User"),
        "roles": request.headers.get("X-Forwarded-Roles"),
        "groups": request.headers.get("X-Forwarded-Groups"),
    }
    response = jsonify(body)
    response.headers["X-Handler"] = handler
    return response


@app.before_request
def admin_vhost():
    if request.host.split(":")[0].lower() == "admin.example.com":
        return seen("admin_vhost")
    return None


@app.route("/public/", defaults={"rest": ""}, methods=METHODS)
@app.route("/public/<path:rest>", methods=METHODS)
def public(rest):
    return seen("public")


@app.route("/admin", defaults={"rest": ""}, methods=METHODS)
@app.route("/admin/", defaults={"rest": ""}, methods=METHODS)
@app.route("/admin/<path:rest>", methods=METHODS)
def admin(rest):
    return seen("admin")


@app.route("/wiki/Special:Admin/", defaults={"rest": ""}, methods=METHODS)
@app.route("/wiki/Special:Admin/<path:rest>", methods=METHODS)
def wiki_admin(rest):
    return seen("wiki_admin")


@app.route("/café/", defaults={"rest": ""}, methods=METHODS)
@app.route("/café/<path:rest>", methods=METHODS)
def cafe_admin(rest):
    return seen("cafe_admin")


@app.route("/c++/", defaults={"rest": ""}, methods=METHODS)
@app.route("/c++/<path:rest>", methods=METHODS)
def plus_admin(rest):
    return seen("plus_admin")


@app.get("/<owner>/notes")
def owner_read(owner):
    return seen("owner_read", owner)


@app.route("/<owner>/notes", methods=WRITES)
def owner_write(owner):
    return seen("owner_write", owner)


@app.route("/", defaults={"rest": ""}, methods=METHODS)
@app.route("/<path:rest>", methods=METHODS)
def catchall(rest):
    return seen("catchall")


if __name__ == "__main__":
    run_simple("127.0.0.1", int(sys.argv[1]), app, threaded=True)
