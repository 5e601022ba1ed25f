"""Django app behind the gate in tests/integration/differential.rs, in one file.

Run: python django_app.py PORT. Serves 127.0.0.1:PORT with Django's own server (`runserver`,
threaded, no reloader). Routes are urlpatterns with path() and re_path(); the owner route is a
class-based View; the admin virtual host is picked by a middleware from `request.get_host()`
read the way Django reads it (`split_domain_port`: lower case, port and trailing dot removed).
Every handler answers JSON naming itself (also in `X-Handler`) and what the app saw.
"""

import sys

from django.conf import settings

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    SECRET_KEY="differential-test-only",
    MIDDLEWARE=[__name__ + ".admin_vhost"],
    INSTALLED_APPS=[],
    LOGGING_CONFIG=None,
)

from django.http import JsonResponse  # noqa: E402
from django.http.request import split_domain_port  # noqa: E402
from django.urls import path, re_path  # noqa: E402
from django.views import View  # noqa: E402


def seen(request, handler, owner=None):
    """The answer: the handler that ran and what Django made of the request."""
    meta = request.META
    body = {
        "handler": handler,
        "method": request.method,
        "path": request.path,
        "host": request.get_host(),
        "owner": owner,
        "cookies": [[k, v] for k, v in request.COOKIES.items()],
        "cookie_headers": [meta["HTTP_COOKIE"]] if "HTTP_COOKIE" in meta else [],
        "authorization": (
            [meta["HTTP_AUTHORIZATION"]] if "HTTP_AUTHORIZATION" in meta else []
        ),
        "user": request.headers.get("X-Forwarded-User"),
        "roles": request.headers.get("X-Forwarded-Roles"),
        "groups": request.headers.get("X-Forwarded-Groups"),
    }
    response = JsonResponse(body)
    response["X-Handler"] = handler
    return response


def admin_vhost(get_response):
    def middleware(request):
        domain, _port = split_domain_port(request.get_host())
        if domain == "admin.example.com":
            return seen(request, "admin_vhost")
        return get_response(request)

    return middleware


def public(request, rest=""):
    return seen(request, "public")


def admin(request, rest=""):
    return seen(request, "admin")


def wiki_admin(request, rest=""):
    return seen(request, "wiki_admin")


def cafe_admin(request, rest=""):
    return seen(request, "cafe_admin")


def plus_admin(request, rest=""):
    return seen(request, "plus_admin")


def catchall(request, rest=""):
    return seen(request, "catchall")


class Notes(View):
    def get(self, request, owner):
        return seen(request, "owner_read", owner)

    def post(self, request, owner):
        return seen(request, "owner_write", owner)

    put = patch = delete = post


urlpatterns = [
    path("public/", public),
    path("public/<path:rest>", public),
    re_path(r"^admin(?:/(?P<rest>.*))?$", admin),
    path("wiki/Special:Admin/", wiki_admin),
    path("wiki/Special:Admin/<path:rest>", wiki_admin),
    path("café/", cafe_admin),
    path("café/<path:rest>", cafe_admin),
    path("c++/", plus_admin),
    path("c++/<path:rest>", plus_admin),
    path("<str:owner>/notes", Notes.as_view()),
    re_path(r"^(?P<rest>.*)$", catchall),
]


if __name__ == "__main__":
    import django
    from django.core.management import call_command

    django.setup()
    call_command(
        "runserver",
        "127.0.0.1:" + sys.argv[1],
        use_reloader=False,
        use_threading=True,
        skip_checks=True,
    )
